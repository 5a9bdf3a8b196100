//! Explosives safety tables and calculations: hazard divisions, compatibility mixing, NEQ aggregation, quantity-distance. Pure: no I/O.
//!
//! The rules live in data, not in code: a TOML table file (the shipped default
//! is `data/default.toml`, embedded) is parsed and checked by
//! [`SafetyTables::from_toml_str`], and every answer quotes the source the
//! table gives for it. The crate never reads files; the app reads the file and
//! hands over its text.
//!
//! Architecture invariant: a [`SafetyTables`] value is always complete and
//! consistent (13 groups, 6 divisions, a symmetric mixing chart whose
//! footnotes exist, an associative and commutative precedence matrix,
//! positive quantity-distance laws for every division). Checks run once, at
//! load time, so the queries below never fail on the table's account.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod load;
mod mixing;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

pub use load::TableError;
pub use mixing::{Concerns, Condition, Held, ItemMatch, StoreFacts};

/// The shipped default tables (49 CFR 177.848(f) mixing, NSW reg 78
/// aggregation, FR-1980/Tukes quantity-distance), as TOML text.
pub const DEFAULT_TABLES_TOML: &str = include_str!("../data/default.toml");

/// The UN compatibility group letters, in chart order. A table must cover all
/// of them: a group missing from the chart would leave a receipt unchecked.
pub const UN_GROUPS: [char; 13] = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L', 'N', 'S'];

/// The UN Class 1 hazard divisions. A table must cover all of them.
pub const UN_DIVISIONS: [&str; 6] = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6"];

/// A UN Class 1 classification code such as `1.1D`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Classification {
    /// Hazard division, e.g. `"1.1"`.
    pub division: String,
    /// Compatibility group letter, e.g. `'D'`.
    pub group: char,
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.division, self.group)
    }
}

/// Parses a UN classification code (`"1.1D"`, `"1.4 S"`, `"1.4s"`) and checks
/// it against the valid codes of the default tables (so `"1.1K"` and `"1.4A"`
/// are refused). Use [`SafetyTables::parse_classification`] for a site table
/// and for a reason when the code is refused.
pub fn parse_un_code(code: &str) -> Option<Classification> {
    SafetyTables::default_tables().parse_classification(code).ok()
}

/// A hazard division as declared in the table.
#[derive(Debug, Clone, PartialEq)]
pub struct HazardDivision {
    /// `"1.1"` … `"1.6"`.
    pub code: String,
    /// Short name, e.g. "mass explosion".
    pub name: String,
    /// Compatibility groups that form a valid classification code with it.
    pub groups: Vec<char>,
}

/// A footnote of the mixing chart: what it is about (`concerns`: which items of a pair; none: every
/// pair of its cells) and what it then requires, both data (see `mixing`).
#[derive(Debug, Clone, PartialEq)]
pub struct Footnote {
    /// Footnote id as in the chart, e.g. `"4"`.
    pub id: String,
    /// Short phrase used in messages; the text when the table gives none.
    pub label: String,
    /// The footnote, in words.
    pub text: String,
    /// Where it comes from.
    pub source: String,
    pub concerns: Option<Concerns>,
    pub condition: Condition,
}

/// One cell of the mixing chart.
#[derive(Debug, Clone, PartialEq)]
pub enum MixingCell {
    /// The groups may share a store.
    Yes,
    /// The groups may never share a store.
    No,
    /// Allowed, unless a footnote that concerns the pair is not met; with `except` (the chart's
    /// "X(4)"), never, unless a footnote concerns the pair and is met.
    Footnotes { notes: Vec<Footnote>, except: bool },
}

/// Governing division and counted NEQ of a mixed store.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The division whose quantity-distance laws apply to the whole store.
    pub division: String,
    /// The NEQ (kg) that counts against those laws.
    pub neq_kg: f64,
}

/// A quantity-distance answer: a distance (m) or a quantity (kg), with the
/// working and the source so a person can check it.
#[derive(Debug, Clone, PartialEq)]
pub struct QdFigure {
    /// Metres for [`SafetyTables::required_distance`], kilograms for
    /// [`SafetyTables::max_neq`].
    pub value: f64,
    /// The law and the numbers put into it.
    pub formula: String,
    /// Where the law comes from.
    pub source: String,
}

/// A quantity-distance law for one division and exposed-site kind.
#[derive(Debug, Clone, PartialEq)]
pub enum QdLaw {
    /// D = max(k · Q^exponent, min_m), Q in kg, D in m.
    Scaled { k: f64, exponent: f64, min_m: f64, formula: String, source: String },
    /// A fixed distance whatever the quantity.
    Fixed { fixed_m: f64, source: String },
}

/// Storage-environment band and alarm thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConditions {
    pub source: String,
    pub temperature_target_min_c: f64,
    pub temperature_target_max_c: f64,
    pub temperature_warn_c: f64,
    /// Alarm when the temperature stays above this for
    /// `temperature_alarm_sustained_hours`.
    pub temperature_alarm_c: f64,
    pub temperature_alarm_sustained_hours: f64,
    pub temperature_critical_c: f64,
    pub humidity_target_min_pct: f64,
    pub humidity_target_max_pct: f64,
    pub humidity_warn_pct: f64,
    /// How long a reading must stay outside the target band before it counts
    /// as an excursion, unless a location says otherwise.
    pub excursion_default_minutes: u32,
}

/// A checked set of explosives safety tables. Build it with
/// [`SafetyTables::from_toml_str`] or [`SafetyTables::default_tables`].
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyTables {
    pub(crate) divisions: Vec<HazardDivision>,
    pub(crate) group_meanings: BTreeMap<char, String>,
    /// Chart order of the groups.
    pub(crate) groups: Vec<char>,
    pub(crate) mixing_source: String,
    /// `cells[i][j]`: yes, no, or footnote ids.
    pub(crate) cells: Vec<Vec<CellSpec>>,
    pub(crate) footnotes: BTreeMap<String, Footnote>,
    /// Item attributes the footnotes may be about (`mixing.attributes`).
    pub(crate) attributes: Vec<String>,
    pub(crate) aggregation_source: String,
    /// Division codes in precedence-matrix order.
    pub(crate) precedence_divisions: Vec<String>,
    /// `precedence[i][j]` is an index into `precedence_divisions`.
    pub(crate) precedence: Vec<Vec<usize>>,
    pub(crate) exclude_1_4_when_mixed: bool,
    pub(crate) quantity_distance: BTreeMap<String, BTreeMap<String, QdLaw>>,
    pub(crate) storage: StorageConditions,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CellSpec {
    Yes,
    No,
    /// Footnote ids; `true`: "no, except" (a list that begins with "no").
    Footnotes(Vec<String>, bool),
}

static DEFAULT_TABLES: OnceLock<Option<SafetyTables>> = OnceLock::new();

impl SafetyTables {
    /// Parses and checks a table file. `file` is only used in error messages,
    /// which read `"{file}: {key}: {reason}"`.
    pub fn from_toml_str(text: &str, file: &str) -> Result<SafetyTables, TableError> {
        load::parse(text, file)
    }

    /// Parses the embedded default tables.
    pub fn try_default() -> Result<SafetyTables, TableError> {
        SafetyTables::from_toml_str(DEFAULT_TABLES_TOML, "qm-safety/data/default.toml")
    }

    /// The embedded default tables, parsed once. The test suite proves the
    /// embedded file parses; should it ever not, this returns
    /// [`SafetyTables::refuse_all`] rather than panicking, so every check
    /// refuses instead of passing.
    pub fn default_tables() -> SafetyTables {
        DEFAULT_TABLES.get_or_init(|| SafetyTables::try_default().ok()).clone().unwrap_or_else(SafetyTables::refuse_all)
    }

    /// Tables that allow nothing: every pair of groups is refused, and there
    /// are no divisions, so aggregation and quantity-distance give no answer.
    pub fn refuse_all() -> SafetyTables {
        SafetyTables {
            divisions: Vec::new(),
            group_meanings: BTreeMap::new(),
            groups: UN_GROUPS.to_vec(),
            mixing_source: "no tables loaded: everything refused".to_string(),
            cells: vec![vec![CellSpec::No; UN_GROUPS.len()]; UN_GROUPS.len()],
            footnotes: BTreeMap::new(),
            attributes: Vec::new(),
            aggregation_source: String::new(),
            precedence_divisions: Vec::new(),
            precedence: Vec::new(),
            exclude_1_4_when_mixed: true,
            quantity_distance: BTreeMap::new(),
            storage: StorageConditions {
                source: "no tables loaded".to_string(),
                temperature_target_min_c: 10.0,
                temperature_target_max_c: 25.0,
                temperature_warn_c: 30.0,
                temperature_alarm_c: 37.8,
                temperature_alarm_sustained_hours: 24.0,
                temperature_critical_c: 65.0,
                humidity_target_min_pct: 40.0,
                humidity_target_max_pct: 65.0,
                humidity_warn_pct: 70.0,
                excursion_default_minutes: 60,
            },
        }
    }

    /// Compatibility group letters in chart order.
    pub fn groups(&self) -> &[char] {
        &self.groups
    }

    /// Meaning of a compatibility group.
    pub fn group_meaning(&self, group: char) -> Option<&str> {
        self.group_meanings.get(&group).map(String::as_str)
    }

    /// The hazard divisions, `1.1` first.
    pub fn hazard_divisions(&self) -> &[HazardDivision] {
        &self.divisions
    }

    /// Parses a classification code and checks it is valid in this table
    /// (the group is allowed in the division).
    pub fn parse_classification(&self, code: &str) -> Result<Classification, String> {
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let mut chars = compact.chars();
        let group = chars.next_back().map(|c| c.to_ascii_uppercase()).ok_or_else(|| "empty classification code".to_string())?;
        let division: String = chars.collect();
        let Some(declared) = self.divisions.iter().find(|d| d.code == division) else {
            return Err(format!("{code:?}: unknown hazard division {division:?} (expected e.g. \"1.1D\")"));
        };
        if !self.groups.contains(&group) {
            return Err(format!("{code:?}: unknown compatibility group {group:?}"));
        }
        if !declared.groups.contains(&group) {
            return Err(format!(
                "{code:?}: group {group} is not valid in division {division} (valid: {})",
                declared.groups.iter().collect::<String>()
            ));
        }
        Ok(Classification { division, group })
    }

    /// Source of the mixing chart.
    pub fn mixing_source(&self) -> &str {
        &self.mixing_source
    }

    /// All footnotes of the mixing chart, by id.
    pub fn footnotes(&self) -> impl Iterator<Item = &Footnote> {
        self.footnotes.values()
    }

    /// Location flags the mixing chart's footnotes can ask for, sorted.
    pub fn location_flags(&self) -> Vec<String> {
        let mut flags: Vec<String> = self
            .footnotes
            .values()
            .filter_map(|f| match &f.condition {
                Condition::Flag(flag) => Some(flag.clone()),
                _ => None,
            })
            .collect();
        flags.sort();
        flags.dedup();
        flags
    }

    fn group_index(&self, group: char) -> Option<usize> {
        self.groups.iter().position(|g| *g == group)
    }

    /// The chart cell for a pair of groups. An unknown group letter gives
    /// [`MixingCell::No`]: what the chart does not know it does not allow.
    pub fn mixing_cell(&self, a: char, b: char) -> MixingCell {
        let (Some(i), Some(j)) = (self.group_index(a), self.group_index(b)) else {
            return MixingCell::No;
        };
        match self.cells.get(i).and_then(|row| row.get(j)) {
            Some(CellSpec::Yes) => MixingCell::Yes,
            Some(CellSpec::Footnotes(ids, except)) => {
                MixingCell::Footnotes { notes: ids.iter().filter_map(|id| self.footnotes.get(id).cloned()).collect(), except: *except }
            }
            Some(CellSpec::No) | None => MixingCell::No,
        }
    }

    /// Source of the aggregation rules.
    pub fn aggregation_source(&self) -> &str {
        &self.aggregation_source
    }

    fn division_index(&self, division: &str) -> Option<usize> {
        self.precedence_divisions.iter().position(|d| d == division)
    }

    /// Governing division of a mixed store: the precedence matrix folded
    /// pairwise. `None` when `divisions` is empty or holds an unknown
    /// division. The loader proved the matrix commutative and associative,
    /// so the order of `divisions` does not matter.
    pub fn governing_division(&self, divisions: &[&str]) -> Option<String> {
        let mut governing: Option<usize> = None;
        for division in divisions {
            let index = self.division_index(division)?;
            governing = Some(match governing {
                None => index,
                Some(so_far) => *self.precedence.get(so_far)?.get(index)?,
            });
        }
        governing.and_then(|i| self.precedence_divisions.get(i).cloned())
    }

    /// Aggregated NEQ of a store given its NEQ (kg) per division: the
    /// governing division and the NEQ that counts against its laws. With
    /// `exclude_1_4_when_mixed`, 1.4 is not counted when another division is
    /// present; alone it counts. Divisions with zero NEQ are not present.
    /// `None` when nothing is present, or a division is unknown, or an NEQ
    /// is negative or not finite.
    pub fn aggregate(&self, neq_kg_by_division: &BTreeMap<String, f64>) -> Option<Aggregate> {
        let mut present: Vec<(&str, f64)> = Vec::new();
        for (division, neq_kg) in neq_kg_by_division {
            self.division_index(division)?;
            if !neq_kg.is_finite() || *neq_kg < 0.0 {
                return None;
            }
            if *neq_kg > 0.0 {
                present.push((division.as_str(), *neq_kg));
            }
        }
        let names: Vec<&str> = present.iter().map(|(d, _)| *d).collect();
        let division = self.governing_division(&names)?;
        let mixed = present.iter().any(|(d, _)| *d != "1.4");
        let neq_kg = present.iter().filter(|(d, _)| !(self.exclude_1_4_when_mixed && mixed && *d == "1.4")).map(|(_, q)| q).sum();
        Some(Aggregate { division, neq_kg })
    }

    /// The quantity-distance law for a division and exposed-site kind.
    pub fn qd_law(&self, division: &str, exposed: &str) -> Option<&QdLaw> {
        self.quantity_distance.get(division)?.get(exposed)
    }

    /// Exposed-site kinds the table has laws for, for a division, sorted.
    pub fn exposed_site_kinds(&self, division: &str) -> Vec<String> {
        self.quantity_distance.get(division).map(|laws| laws.keys().cloned().collect()).unwrap_or_default()
    }

    /// Required distance (m) from a store of `neq_kg` of `division` to an
    /// exposed site. `None` for an unknown division or kind, or an NEQ that
    /// is negative or not finite.
    pub fn required_distance(&self, division: &str, neq_kg: f64, exposed: &str) -> Option<QdFigure> {
        if !neq_kg.is_finite() || neq_kg < 0.0 {
            return None;
        }
        match self.qd_law(division, exposed)? {
            QdLaw::Scaled { k, exponent, min_m, formula, source } => {
                let scaled_m = k * neq_kg.powf(*exponent);
                let value = scaled_m.max(*min_m);
                let working = if scaled_m < *min_m {
                    format!("{formula}; Q = {} kg → {} m, below the minimum → D = {} m", number(neq_kg), round1(scaled_m), round1(value))
                } else {
                    format!("{formula}; Q = {} kg → D = {} m", number(neq_kg), round1(value))
                };
                Some(QdFigure { value, formula: working, source: source.clone() })
            }
            QdLaw::Fixed { fixed_m, source } => Some(QdFigure {
                value: *fixed_m,
                formula: format!("D = {} m whatever the quantity", number(*fixed_m)),
                source: source.clone(),
            }),
        }
    }

    /// Largest NEQ (kg) of `division` a distance allows to an exposed site:
    /// the inverse of [`SafetyTables::required_distance`]. A fixed law gives
    /// `f64::INFINITY` when the distance meets it and 0 when it does not; a
    /// scaled law gives 0 below its minimum distance. `None` for an unknown
    /// division or kind, or a distance that is negative or not finite.
    /// The number alone of [`SafetyTables::max_neq`], without building its explanation: for the rule
    /// that runs on every movement into a magazine.
    pub fn max_neq_kg(&self, division: &str, exposed: &str, distance_m: f64) -> Option<f64> {
        if !distance_m.is_finite() || distance_m < 0.0 {
            return None;
        }
        Some(match self.qd_law(division, exposed)? {
            QdLaw::Scaled { k, exponent, min_m, .. } => {
                if distance_m < *min_m {
                    0.0
                } else {
                    (distance_m / k).powf(1.0 / exponent)
                }
            }
            QdLaw::Fixed { fixed_m, .. } => {
                if distance_m >= *fixed_m {
                    f64::INFINITY
                } else {
                    0.0
                }
            }
        })
    }

    pub fn max_neq(&self, division: &str, exposed: &str, distance_m: f64) -> Option<QdFigure> {
        if !distance_m.is_finite() || distance_m < 0.0 {
            return None;
        }
        match self.qd_law(division, exposed)? {
            QdLaw::Scaled { k, exponent, min_m, source, .. } => {
                let inverse = 1.0 / exponent;
                let law = format!("Q = (D/{})^{}", number(*k), number(inverse));
                if distance_m < *min_m {
                    return Some(QdFigure {
                        value: 0.0,
                        formula: format!(
                            "{law}, D at least {} m; D = {} m is below the minimum → Q = 0 kg",
                            number(*min_m),
                            number(distance_m)
                        ),
                        source: source.clone(),
                    });
                }
                let value = (distance_m / k).powf(inverse);
                Some(QdFigure {
                    value,
                    formula: format!("{law}; D = {} m → Q = {} kg", number(distance_m), round1(value)),
                    source: source.clone(),
                })
            }
            QdLaw::Fixed { fixed_m, source } => {
                let met = distance_m >= *fixed_m;
                Some(QdFigure {
                    value: if met { f64::INFINITY } else { 0.0 },
                    formula: if met {
                        format!("D = {} m whatever the quantity; {} m meets it → no limit", number(*fixed_m), number(distance_m))
                    } else {
                        format!("D = {} m whatever the quantity; {} m does not meet it → Q = 0 kg", number(*fixed_m), number(distance_m))
                    },
                    source: source.clone(),
                })
            }
        }
    }

    /// Storage-environment band and alarm thresholds.
    pub fn storage_conditions(&self) -> &StorageConditions {
        &self.storage
    }
}

/// A number as a person writes it: no trailing zeros, at most 4 decimals.
fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

fn round1(value: f64) -> String {
    format!("{value:.1}")
}
