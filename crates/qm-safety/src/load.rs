//! Parsing and checking of a safety table file (TOML text) into `SafetyTables`, with errors that name the file, the key and the reason.
//!
//! The TOML is walked by hand rather than through serde derive so that every
//! error can name the exact key (`mixing.rows[3][11]`) and so that unknown
//! keys, which are usually typos, are refused instead of ignored.

use std::collections::{BTreeMap, BTreeSet};

use toml::{Table, Value};

use crate::{
    CellSpec, Concerns, Condition, Footnote, HazardDivision, ItemMatch, QdLaw, SafetyTables, StorageConditions, UN_DIVISIONS, UN_GROUPS,
};

/// A table file that cannot be used. Displays as `"{file}: {key}: {reason}"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct TableError {
    /// Name of the file, as given by the caller.
    pub file: String,
    /// Dotted key path, e.g. `quantity_distance."1.1".inhabited_building.k`,
    /// or `line 3, column 7` for a syntax error.
    pub key: String,
    /// What is wrong, for people.
    pub reason: String,
}

/// Exposed-site kinds every division must have a law for.
const REQUIRED_EXPOSED_SITES: [&str; 3] = ["inhabited_building", "public_traffic_route", "magazine"];

/// The maximum size of a table file. The default is about 20 kB.
const MAX_TABLE_BYTES: usize = 1024 * 1024;

struct Loader<'a> {
    file: &'a str,
}

/// Quotes a key segment the way TOML would need it.
fn segment(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        segment(key)
    } else {
        format!("{path}.{}", segment(key))
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

pub(crate) fn parse(text: &str, file: &str) -> Result<SafetyTables, TableError> {
    Loader { file }.tables(text)
}

impl Loader<'_> {
    fn error(&self, key: impl Into<String>, reason: impl Into<String>) -> TableError {
        TableError { file: self.file.to_string(), key: key.into(), reason: reason.into() }
    }

    fn syntax_error(&self, text: &str, error: &toml::de::Error) -> TableError {
        let key = match error.span() {
            Some(span) => {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
                format!("line {line}, column {column}")
            }
            None => "(syntax)".to_string(),
        };
        self.error(key, format!("invalid TOML: {}", error.message().trim()))
    }

    fn only_keys(&self, table: &Table, path: &str, allowed: &[&str]) -> Result<(), TableError> {
        match table.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(self.error(join(path, key), format!("unknown key (expected one of: {})", allowed.join(", ")))),
            None => Ok(()),
        }
    }

    fn get<'t>(&self, table: &'t Table, path: &str, key: &str) -> Result<&'t Value, TableError> {
        table.get(key).ok_or_else(|| {
            let reason = if path.is_empty() { "missing section" } else { "missing" };
            self.error(join(path, key), reason)
        })
    }

    fn table<'t>(&self, table: &'t Table, path: &str, key: &str) -> Result<&'t Table, TableError> {
        match self.get(table, path, key)? {
            Value::Table(inner) => Ok(inner),
            other => Err(self.error(join(path, key), format!("must be a table, found {}", type_name(other)))),
        }
    }

    fn array<'t>(&self, table: &'t Table, path: &str, key: &str) -> Result<&'t [Value], TableError> {
        match self.get(table, path, key)? {
            Value::Array(items) => Ok(items),
            other => Err(self.error(join(path, key), format!("must be an array, found {}", type_name(other)))),
        }
    }

    fn string(&self, table: &Table, path: &str, key: &str) -> Result<String, TableError> {
        match self.get(table, path, key)? {
            Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
            Value::String(_) => Err(self.error(join(path, key), "must not be empty")),
            other => Err(self.error(join(path, key), format!("must be a string, found {}", type_name(other)))),
        }
    }

    fn optional_string(&self, table: &Table, path: &str, key: &str) -> Result<Option<String>, TableError> {
        if table.contains_key(key) {
            self.string(table, path, key).map(Some)
        } else {
            Ok(None)
        }
    }

    fn number(&self, table: &Table, path: &str, key: &str) -> Result<f64, TableError> {
        let value = match self.get(table, path, key)? {
            Value::Float(x) => *x,
            Value::Integer(i) => *i as f64,
            other => return Err(self.error(join(path, key), format!("must be a number, found {}", type_name(other)))),
        };
        if value.is_finite() {
            Ok(value)
        } else {
            Err(self.error(join(path, key), "must be a finite number"))
        }
    }

    fn positive(&self, table: &Table, path: &str, key: &str) -> Result<f64, TableError> {
        let value = self.number(table, path, key)?;
        if value > 0.0 {
            Ok(value)
        } else {
            Err(self.error(join(path, key), "must be a positive number"))
        }
    }

    fn boolean(&self, table: &Table, path: &str, key: &str) -> Result<bool, TableError> {
        match self.get(table, path, key)? {
            Value::Boolean(b) => Ok(*b),
            other => Err(self.error(join(path, key), format!("must be true or false, found {}", type_name(other)))),
        }
    }

    fn group_letter(&self, text: &str, key: &str) -> Result<char, TableError> {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(letter), None) if UN_GROUPS.contains(&letter) => Ok(letter),
            _ => Err(self
                .error(key, format!("unknown compatibility group {text:?} (the UN groups are {})", UN_GROUPS.iter().collect::<String>()))),
        }
    }

    fn tables(&self, text: &str) -> Result<SafetyTables, TableError> {
        if text.len() > MAX_TABLE_BYTES {
            return Err(self.error("(file)", format!("is {} bytes, more than the limit of {MAX_TABLE_BYTES}", text.len())));
        }
        let root: Table = toml::from_str(text).map_err(|e| self.syntax_error(text, &e))?;
        self.only_keys(&root, "", &["hazard_divisions", "groups", "mixing", "aggregation", "quantity_distance", "storage_conditions"])?;
        let group_meanings = self.groups(&root)?;
        let divisions = self.divisions(&root)?;
        let (groups, mixing_source, cells, footnotes, attributes) = self.mixing(&root, &divisions)?;
        let (aggregation_source, precedence_divisions, precedence, exclude_1_4_when_mixed) = self.aggregation(&root)?;
        let quantity_distance = self.quantity_distance(&root)?;
        let storage = self.storage_conditions(&root)?;
        Ok(SafetyTables {
            divisions,
            group_meanings,
            groups,
            mixing_source,
            cells,
            footnotes,
            attributes,
            aggregation_source,
            precedence_divisions,
            precedence,
            exclude_1_4_when_mixed,
            quantity_distance,
            storage,
        })
    }

    fn groups(&self, root: &Table) -> Result<BTreeMap<char, String>, TableError> {
        let table = self.table(root, "", "groups")?;
        let mut meanings = BTreeMap::new();
        for (key, _) in table {
            let letter = self.group_letter(key, &join("groups", key))?;
            meanings.insert(letter, self.string(table, "groups", key)?);
        }
        if let Some(missing) = UN_GROUPS.iter().find(|g| !meanings.contains_key(g)) {
            return Err(self.error(join("groups", &missing.to_string()), "missing: a table must cover all 13 UN compatibility groups"));
        }
        Ok(meanings)
    }

    fn divisions(&self, root: &Table) -> Result<Vec<HazardDivision>, TableError> {
        let table = self.table(root, "", "hazard_divisions")?;
        let mut divisions = Vec::new();
        for (code, _) in table {
            let path = join("hazard_divisions", code);
            if !UN_DIVISIONS.contains(&code.as_str()) {
                return Err(self.error(path, format!("unknown hazard division (expected one of {})", UN_DIVISIONS.join(", "))));
            }
            let entry = self.table(table, "hazard_divisions", code)?;
            self.only_keys(entry, &path, &["name", "groups"])?;
            let name = self.string(entry, &path, "name")?;
            let mut groups = Vec::new();
            for (i, item) in self.array(entry, &path, "groups")?.iter().enumerate() {
                let key = format!("{path}.groups[{i}]");
                let Value::String(text) = item else {
                    return Err(self.error(key, "must be a group letter"));
                };
                let letter = self.group_letter(text, &key)?;
                if groups.contains(&letter) {
                    return Err(self.error(key, format!("group {letter} listed twice")));
                }
                groups.push(letter);
            }
            divisions.push(HazardDivision { code: code.clone(), name, groups });
        }
        if let Some(missing) = UN_DIVISIONS.iter().find(|d| !divisions.iter().any(|x| x.code == **d)) {
            return Err(self.error(join("hazard_divisions", missing), "missing: a table must cover all 6 hazard divisions"));
        }
        Ok(divisions)
    }

    #[allow(clippy::type_complexity)]
    fn mixing(
        &self,
        root: &Table,
        divisions: &[HazardDivision],
    ) -> Result<(Vec<char>, String, Vec<Vec<CellSpec>>, BTreeMap<String, Footnote>, Vec<String>), TableError> {
        let table = self.table(root, "", "mixing")?;
        self.only_keys(table, "mixing", &["source", "groups", "attributes", "rows", "footnotes"])?;
        let source = self.string(table, "mixing", "source")?;

        let mut groups = Vec::new();
        for (i, item) in self.array(table, "mixing", "groups")?.iter().enumerate() {
            let key = format!("mixing.groups[{i}]");
            let Value::String(text) = item else {
                return Err(self.error(key, "must be a group letter"));
            };
            let letter = self.group_letter(text, &key)?;
            if groups.contains(&letter) {
                return Err(self.error(key, format!("group {letter} listed twice")));
            }
            groups.push(letter);
        }
        if let Some(missing) = UN_GROUPS.iter().find(|g| !groups.contains(g)) {
            return Err(
                self.error("mixing.groups", format!("group {missing} missing: the chart must cover all 13 UN compatibility groups"))
            );
        }

        let attributes = self.attributes(table)?;
        let known = Known { groups: &groups, divisions, attributes: &attributes };
        let footnotes = self.footnotes(table, &known)?;

        let rows = self.array(table, "mixing", "rows")?;
        let size = groups.len();
        if rows.len() != size {
            return Err(self.error("mixing.rows", format!("has {} rows, expected {size}", rows.len())));
        }
        let mut cells = Vec::with_capacity(size);
        for (i, row) in rows.iter().enumerate() {
            let key = format!("mixing.rows[{i}]");
            let Value::Array(row) = row else {
                return Err(self.error(key, format!("must be an array, found {}", type_name(row))));
            };
            if row.len() != size {
                return Err(self.error(key, format!("has {} cells, expected {size}", row.len())));
            }
            let mut parsed = Vec::with_capacity(size);
            for (j, cell) in row.iter().enumerate() {
                parsed.push(self.cell(cell, &format!("mixing.rows[{i}][{j}]"), &footnotes)?);
            }
            cells.push(parsed);
        }

        self.symmetric(&groups, &cells)?;
        Ok((groups, source, cells, footnotes, attributes))
    }

    fn footnotes(&self, mixing: &Table, known: &Known) -> Result<BTreeMap<String, Footnote>, TableError> {
        let mut footnotes = BTreeMap::new();
        let Some(value) = mixing.get("footnotes") else {
            return Ok(footnotes);
        };
        let Value::Table(table) = value else {
            return Err(self.error("mixing.footnotes", "must be a table"));
        };
        for (id, _) in table {
            let path = join("mixing.footnotes", id);
            let entry = self.table(table, "mixing.footnotes", id)?;
            self.only_keys(
                entry,
                &path,
                &["label", "text", "source", "concerns", "requires_flag", "requires", "requires_absent", "allowed"],
            )?;
            let text = self.string(entry, &path, "text")?;
            let label = self.optional_string(entry, &path, "label")?.unwrap_or_else(|| text.clone());
            let source = self.string(entry, &path, "source")?;
            let concerns = match entry.get("concerns") {
                None => None,
                Some(_) => Some(self.concerns(self.table(entry, &path, "concerns")?, &join(&path, "concerns"), known)?),
            };
            let condition = self.condition(entry, &path, known)?;
            footnotes.insert(id.clone(), Footnote { id: id.clone(), label, text, source, concerns, condition });
        }
        Ok(footnotes)
    }

    /// The chart must say the same of a/b and b/a.
    fn symmetric(&self, groups: &[char], cells: &[Vec<CellSpec>]) -> Result<(), TableError> {
        let size = groups.len();
        for i in 0..size {
            for j in (i + 1)..size {
                let (a, b) = (&cells[i][j], &cells[j][i]);
                if !same_cell(a, b) {
                    return Err(self.error(
                        "mixing",
                        format!(
                            "cell {}/{} is {} but {}/{} is {}: the chart must be symmetric",
                            groups[i],
                            groups[j],
                            describe(a),
                            groups[j],
                            groups[i],
                            describe(b)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `mixing.attributes`: the item attributes footnotes may name, sorted.
    fn attributes(&self, table: &Table) -> Result<Vec<String>, TableError> {
        let mut attributes: Vec<String> = Vec::new();
        if table.contains_key("attributes") {
            for (i, item) in self.array(table, "mixing", "attributes")?.iter().enumerate() {
                let key = format!("mixing.attributes[{i}]");
                match item {
                    Value::String(a) if is_identifier(a) && !attributes.contains(a) => attributes.push(a.clone()),
                    Value::String(a) if is_identifier(a) => return Err(self.error(key, format!("{a:?} listed twice"))),
                    _ => return Err(self.error(key, "must be an attribute name (lower case letters, digits, _)")),
                }
            }
        }
        attributes.sort();
        Ok(attributes)
    }

    /// Exactly one of: `requires_flag`, `requires` ("identical" or "never"), `requires_absent`
    /// (an attribute), `allowed = true` (relabel only).
    fn condition(&self, entry: &Table, path: &str, known: &Known) -> Result<Condition, TableError> {
        let given: Vec<&str> =
            ["requires_flag", "requires", "requires_absent", "allowed"].into_iter().filter(|k| entry.contains_key(*k)).collect();
        if given.len() != 1 {
            return Err(self.error(
                path,
                "must give exactly one of requires_flag (a location flag), requires (\"identical\" or \"never\"), \
                 requires_absent (an item attribute) or allowed = true (relabel only)",
            ));
        }
        Ok(match given[0] {
            "requires_flag" => {
                let flag = self.string(entry, path, "requires_flag")?;
                if !is_identifier(&flag) {
                    return Err(
                        self.error(join(path, "requires_flag"), format!("{flag:?} is not a flag name (lower case letters, digits, _)"))
                    );
                }
                Condition::Flag(flag)
            }
            "requires" => match self.string(entry, path, "requires")?.as_str() {
                "identical" => Condition::Identical,
                "never" => Condition::Never,
                other => return Err(self.error(join(path, "requires"), format!("{other:?}: expected \"identical\" or \"never\""))),
            },
            "requires_absent" => {
                Condition::Absent(known.attribute(self, &self.string(entry, path, "requires_absent")?, &join(path, "requires_absent"))?)
            }
            _ => {
                if !self.boolean(entry, path, "allowed")? {
                    return Err(self.error(join(path, "allowed"), "only allowed = true means anything (relabel only)"));
                }
                Condition::Relabel
            }
        })
    }

    fn concerns(&self, t: &Table, path: &str, known: &Known) -> Result<Concerns, TableError> {
        self.only_keys(t, path, &["attributes", "not_attributes", "division", "group", "other_divisions"])?;
        let list = |key: &str| -> Result<Vec<String>, TableError> {
            if !t.contains_key(key) {
                return Ok(vec![]);
            }
            self.array(t, path, key)?
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.error(join(path, key), "must be a list of strings")),
                })
                .collect()
        };
        let mut item = ItemMatch::default();
        for (key, into) in [("attributes", &mut item.attributes), ("not_attributes", &mut item.not_attributes)] {
            for a in list(key)? {
                into.push(known.attribute(self, &a, &join(path, key))?);
            }
        }
        if let Some(d) = self.optional_string(t, path, "division")? {
            item.division = Some(known.division(self, &d, &join(path, "division"))?);
        }
        if let Some(g) = self.optional_string(t, path, "group")? {
            let letter = self.group_letter(&g, &join(path, "group"))?;
            if !known.groups.contains(&letter) {
                return Err(self.error(join(path, "group"), format!("group {letter} is not in the chart")));
            }
            item.group = Some(letter);
        }
        let mut other_divisions = vec![];
        for d in list("other_divisions")? {
            other_divisions.push(known.division(self, &d, &join(path, "other_divisions"))?);
        }
        Ok(Concerns { item, other_divisions })
    }

    fn cell(&self, cell: &Value, key: &str, footnotes: &BTreeMap<String, Footnote>) -> Result<CellSpec, TableError> {
        match cell {
            Value::String(text) if text == "yes" => Ok(CellSpec::Yes),
            Value::String(text) if text == "no" => Ok(CellSpec::No),
            Value::Array(ids) if !ids.is_empty() => {
                let except = matches!(ids.first(), Some(Value::String(t)) if t == "no");
                let ids = if except { &ids[1..] } else { &ids[..] };
                if ids.is_empty() {
                    return Err(self.error(key, "[\"no\", …] names the footnotes that make an exception, e.g. [\"no\", \"4\"]"));
                }
                let mut parsed: Vec<String> = Vec::new();
                for id in ids {
                    let Value::String(id) = id else {
                        return Err(self.error(key, "footnote ids must be strings, e.g. [\"4\"]"));
                    };
                    if !footnotes.contains_key(id) {
                        return Err(self.error(key, format!("unknown footnote {id:?}")));
                    }
                    if parsed.contains(id) {
                        return Err(self.error(key, format!("footnote {id:?} listed twice")));
                    }
                    parsed.push(id.clone());
                }
                Ok(CellSpec::Footnotes(parsed, except))
            }
            other => Err(self.error(
                key,
                format!(
                    "expected \"yes\", \"no\" or a list of footnote ids (after \"no\" for an exception), found {}",
                    match other {
                        Value::String(text) => format!("{text:?}"),
                        Value::Array(_) => "an empty list".to_string(),
                        _ => type_name(other).to_string(),
                    }
                ),
            )),
        }
    }

    #[allow(clippy::type_complexity)]
    fn aggregation(&self, root: &Table) -> Result<(String, Vec<String>, Vec<Vec<usize>>, bool), TableError> {
        let path = "aggregation";
        let table = self.table(root, "", path)?;
        self.only_keys(table, path, &["source", "divisions", "precedence", "exclude_1_4_when_mixed"])?;
        let source = self.string(table, path, "source")?;
        let exclude = self.boolean(table, path, "exclude_1_4_when_mixed")?;
        let mut divisions: Vec<String> = Vec::new();
        for (i, item) in self.array(table, path, "divisions")?.iter().enumerate() {
            let key = format!("{path}.divisions[{i}]");
            match item {
                Value::String(d) if UN_DIVISIONS.contains(&d.as_str()) => {
                    if divisions.contains(d) {
                        return Err(self.error(key, format!("division {d} listed twice")));
                    }
                    divisions.push(d.clone());
                }
                _ => return Err(self.error(key, "must be a hazard division, e.g. \"1.1\"")),
            }
        }
        if let Some(missing) = UN_DIVISIONS.iter().find(|d| !divisions.iter().any(|x| x == *d)) {
            return Err(
                self.error(format!("{path}.divisions"), format!("division {missing} missing: the matrix must cover all 6 divisions"))
            );
        }
        let size = divisions.len();
        let rows = self.array(table, path, "precedence")?;
        if rows.len() != size {
            return Err(self.error(format!("{path}.precedence"), format!("has {} rows, expected {size}", rows.len())));
        }
        let mut matrix = Vec::with_capacity(size);
        for (i, row) in rows.iter().enumerate() {
            let key = format!("{path}.precedence[{i}]");
            let Value::Array(row) = row else {
                return Err(self.error(key, "must be an array"));
            };
            if row.len() != size {
                return Err(self.error(key, format!("has {} cells, expected {size}", row.len())));
            }
            let mut parsed = Vec::with_capacity(size);
            for (j, cell) in row.iter().enumerate() {
                let index = match cell {
                    Value::String(d) => divisions.iter().position(|x| x == d),
                    _ => None,
                };
                let Some(index) = index else {
                    return Err(self.error(format!("{key}[{j}]"), "must be one of the listed divisions"));
                };
                parsed.push(index);
            }
            matrix.push(parsed);
        }
        // The fold of reg 78 gives one answer whatever the order only if the
        // matrix is idempotent, commutative and associative; check all three
        // so that no table can make the answer depend on the order of a list.
        let name = |i: usize| divisions[i].as_str();
        for a in 0..size {
            if matrix[a][a] != a {
                return Err(self.error(
                    format!("{path}.precedence"),
                    format!("{} with {} gives {}: a division mixed with itself must stay itself", name(a), name(a), name(matrix[a][a])),
                ));
            }
            for b in 0..size {
                if matrix[a][b] != matrix[b][a] {
                    return Err(self.error(
                        format!("{path}.precedence"),
                        format!(
                            "{}+{} gives {} but {}+{} gives {}: the matrix must be symmetric",
                            name(a),
                            name(b),
                            name(matrix[a][b]),
                            name(b),
                            name(a),
                            name(matrix[b][a])
                        ),
                    ));
                }
                for c in 0..size {
                    let left = matrix[matrix[a][b]][c];
                    let right = matrix[a][matrix[b][c]];
                    if left != right {
                        return Err(self.error(
                            format!("{path}.precedence"),
                            format!(
                                "({}+{})+{} gives {} but {}+({}+{}) gives {}: the governing division would depend on the order of folding",
                                name(a),
                                name(b),
                                name(c),
                                name(left),
                                name(a),
                                name(b),
                                name(c),
                                name(right)
                            ),
                        ));
                    }
                }
            }
        }
        Ok((source, divisions, matrix, exclude))
    }

    fn quantity_distance(&self, root: &Table) -> Result<BTreeMap<String, BTreeMap<String, QdLaw>>, TableError> {
        let table = self.table(root, "", "quantity_distance")?;
        let mut all = BTreeMap::new();
        for (division, _) in table {
            let path = join("quantity_distance", division);
            if !UN_DIVISIONS.contains(&division.as_str()) {
                return Err(self.error(path, format!("unknown hazard division (expected one of {})", UN_DIVISIONS.join(", "))));
            }
            let sites = self.table(table, "quantity_distance", division)?;
            let mut laws = BTreeMap::new();
            for (kind, _) in sites {
                let law_path = join(&path, kind);
                if !is_identifier(kind) {
                    return Err(self.error(law_path, "exposed-site kind must be a name of lower case letters, digits and _"));
                }
                let law = self.table(sites, &path, kind)?;
                laws.insert(kind.clone(), self.law(law, &law_path)?);
            }
            if let Some(missing) = REQUIRED_EXPOSED_SITES.iter().find(|k| !laws.contains_key(**k)) {
                return Err(self.error(join(&path, missing), "missing"));
            }
            all.insert(division.clone(), laws);
        }
        if let Some(missing) = UN_DIVISIONS.iter().find(|d| !all.contains_key(**d)) {
            return Err(self.error(join("quantity_distance", missing), "missing: every hazard division needs quantity-distance laws"));
        }
        Ok(all)
    }

    fn law(&self, law: &Table, path: &str) -> Result<QdLaw, TableError> {
        let source = self.string(law, path, "source")?;
        match (law.contains_key("k"), law.contains_key("fixed_m")) {
            (true, true) => Err(self.error(path, "give either k (a scaled law) or fixed_m, not both")),
            (false, false) => Err(self.error(path, "missing: give k (D = max(k·Q^exponent, min_m)) or fixed_m")),
            (false, true) => {
                self.only_keys(law, path, &["fixed_m", "source"])?;
                let fixed_m = self.number(law, path, "fixed_m")?;
                if fixed_m < 0.0 {
                    return Err(self.error(join(path, "fixed_m"), "must not be negative"));
                }
                Ok(QdLaw::Fixed { fixed_m, source })
            }
            (true, false) => {
                self.only_keys(law, path, &["k", "exponent", "min_m", "formula", "source"])?;
                let k = self.positive(law, path, "k")?;
                let exponent = if law.contains_key("exponent") { self.positive(law, path, "exponent")? } else { 1.0 / 3.0 };
                let min_m = if law.contains_key("min_m") { self.number(law, path, "min_m")? } else { 0.0 };
                if min_m < 0.0 {
                    return Err(self.error(join(path, "min_m"), "must not be negative"));
                }
                let formula = match self.optional_string(law, path, "formula")? {
                    Some(formula) => formula,
                    None if min_m > 0.0 => {
                        format!("D = max({}·Q^{}, {} m)", crate::number(k), crate::number(exponent), crate::number(min_m))
                    }
                    None => format!("D = {}·Q^{}", crate::number(k), crate::number(exponent)),
                };
                Ok(QdLaw::Scaled { k, exponent, min_m, formula, source })
            }
        }
    }

    fn storage_conditions(&self, root: &Table) -> Result<StorageConditions, TableError> {
        let path = "storage_conditions";
        let t = self.table(root, "", path)?;
        self.only_keys(
            t,
            path,
            &[
                "source",
                "temperature_target_min_c",
                "temperature_target_max_c",
                "temperature_warn_c",
                "temperature_alarm_c",
                "temperature_alarm_sustained_hours",
                "temperature_critical_c",
                "humidity_target_min_pct",
                "humidity_target_max_pct",
                "humidity_warn_pct",
                "excursion_default_minutes",
            ],
        )?;
        let conditions = StorageConditions {
            source: self.string(t, path, "source")?,
            temperature_target_min_c: self.number(t, path, "temperature_target_min_c")?,
            temperature_target_max_c: self.number(t, path, "temperature_target_max_c")?,
            temperature_warn_c: self.number(t, path, "temperature_warn_c")?,
            temperature_alarm_c: self.number(t, path, "temperature_alarm_c")?,
            temperature_alarm_sustained_hours: self.positive(t, path, "temperature_alarm_sustained_hours")?,
            temperature_critical_c: self.number(t, path, "temperature_critical_c")?,
            humidity_target_min_pct: self.number(t, path, "humidity_target_min_pct")?,
            humidity_target_max_pct: self.number(t, path, "humidity_target_max_pct")?,
            humidity_warn_pct: self.number(t, path, "humidity_warn_pct")?,
            excursion_default_minutes: match self.get(t, path, "excursion_default_minutes")? {
                Value::Integer(m) if *m > 0 && *m <= i64::from(u32::MAX) => *m as u32,
                _ => return Err(self.error(join(path, "excursion_default_minutes"), "must be a positive whole number of minutes")),
            },
        };
        let c = &conditions;
        let ordered = [
            ("temperature_target_min_c", c.temperature_target_min_c, "temperature_target_max_c", c.temperature_target_max_c),
            ("temperature_target_max_c", c.temperature_target_max_c, "temperature_warn_c", c.temperature_warn_c),
            ("temperature_warn_c", c.temperature_warn_c, "temperature_alarm_c", c.temperature_alarm_c),
            ("temperature_alarm_c", c.temperature_alarm_c, "temperature_critical_c", c.temperature_critical_c),
            ("humidity_target_min_pct", c.humidity_target_min_pct, "humidity_target_max_pct", c.humidity_target_max_pct),
            ("humidity_target_max_pct", c.humidity_target_max_pct, "humidity_warn_pct", c.humidity_warn_pct),
        ];
        for (low_key, low, high_key, high) in ordered {
            if low > high {
                return Err(self.error(join(path, high_key), format!("is {high}, below {low_key} ({low}): thresholds must rise in order")));
            }
        }
        for (key, value) in [
            ("humidity_target_min_pct", c.humidity_target_min_pct),
            ("humidity_target_max_pct", c.humidity_target_max_pct),
            ("humidity_warn_pct", c.humidity_warn_pct),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return Err(self.error(join(path, key), "must be between 0 and 100 %"));
            }
        }
        Ok(conditions)
    }
}

/// What a footnote may name: the chart's groups, the table's divisions, `mixing.attributes`.
struct Known<'a> {
    groups: &'a [char],
    divisions: &'a [HazardDivision],
    attributes: &'a [String],
}

impl Known<'_> {
    fn attribute(&self, p: &Loader, a: &str, key: &str) -> Result<String, TableError> {
        if self.attributes.iter().any(|x| x == a) {
            Ok(a.to_string())
        } else {
            Err(p.error(key, format!("{a:?} is not in mixing.attributes ({})", self.attributes.join(", "))))
        }
    }

    fn division(&self, p: &Loader, d: &str, key: &str) -> Result<String, TableError> {
        if self.divisions.iter().any(|x| x.code == d) {
            Ok(d.to_string())
        } else {
            Err(p.error(key, format!("{d:?} is not a hazard division of the table")))
        }
    }
}

fn same_cell(a: &CellSpec, b: &CellSpec) -> bool {
    match (a, b) {
        (CellSpec::Yes, CellSpec::Yes) | (CellSpec::No, CellSpec::No) => true,
        (CellSpec::Footnotes(x, e), CellSpec::Footnotes(y, f)) => {
            e == f && x.iter().collect::<BTreeSet<_>>() == y.iter().collect::<BTreeSet<_>>()
        }
        _ => false,
    }
}

fn describe(cell: &CellSpec) -> String {
    match cell {
        CellSpec::Yes => "\"yes\"".to_string(),
        CellSpec::No => "\"no\"".to_string(),
        CellSpec::Footnotes(ids, false) => format!("{ids:?}"),
        CellSpec::Footnotes(ids, true) => format!("\"no\" except {ids:?}"),
    }
}
