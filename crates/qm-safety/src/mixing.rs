//! The mixing chart's footnotes, judged on the items they are about (49 CFR 177.848(g) notes): a
//! footnote's subject (a detonator, a 1.4S firework beside 1.1 or 1.2, a G article that is not a
//! firework, any pair of L items) is data, and so is what it then requires (a location flag,
//! identical items, the absence of a kind of item, or never). A pair it does not concern is judged
//! by its cell alone; an item is never judged against itself.

use crate::{Classification, SafetyTables};
use std::collections::BTreeMap;

/// Which item of a pair a footnote is about.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemMatch {
    /// The item has every one of these attributes.
    pub attributes: Vec<String>,
    /// And none of these.
    pub not_attributes: Vec<String>,
    pub division: Option<String>,
    pub group: Option<char>,
}

/// A footnote's subject: one item of the pair matches `item` and, when `other_divisions` is not
/// empty, the other is of one of those divisions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Concerns {
    pub item: ItemMatch,
    pub other_divisions: Vec<String>,
}

/// What a footnote requires of a pair it concerns.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Nothing: it only relabels the mixed store (notes 2 and 3).
    Relabel,
    /// The location must carry this flag (note 4, detonator provisions).
    Flag(String),
    /// The two must be the same item type (note 1): two different item types never are.
    Identical,
    /// The store may hold no item with this attribute (note 6, loose explosive substances).
    Absent(String),
    /// The pair may not share the store (note 5).
    Never,
}

/// One item in a store, as the chart judges it.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    /// For messages: "TNT block 1.1D (lot TNT-3)".
    pub label: &'a str,
    pub item_type: &'a str,
    pub classification: &'a Classification,
    pub attributes: &'a [String],
}

/// What the store is, beside the pair: its location flags, and for each item attribute present in
/// it (after the movement) the label of one item that has it.
#[derive(Debug, Clone, Copy)]
pub struct StoreFacts<'a> {
    pub flags: &'a [String],
    pub attributes: &'a BTreeMap<String, String>,
}

impl ItemMatch {
    fn matches(&self, h: &Held) -> bool {
        self.attributes.iter().all(|a| h.attributes.contains(a))
            && !self.not_attributes.iter().any(|a| h.attributes.contains(a))
            && self.division.as_ref().is_none_or(|d| *d == h.classification.division)
            && self.group.is_none_or(|g| g == h.classification.group)
    }
}

impl Concerns {
    fn about(&self, a: &Held, b: &Held) -> bool {
        let one = |x: &Held, y: &Held| {
            self.item.matches(x) && (self.other_divisions.is_empty() || self.other_divisions.contains(&y.classification.division))
        };
        one(a, b) || one(b, a)
    }
}

impl SafetyTables {
    /// The item attributes the footnotes can be about (`mixing.attributes`), sorted.
    pub fn item_attributes(&self) -> &[String] {
        &self.attributes
    }

    /// The footnotes of a pair's cell whose subject is in the pair (all of them for a footnote
    /// with no subject).
    pub fn footnotes_in_play(&self, a: &Held, b: &Held) -> Vec<crate::Footnote> {
        match self.mixing_cell(a.classification.group, b.classification.group) {
            crate::MixingCell::Footnotes { notes, .. } => {
                notes.into_iter().filter(|n| n.concerns.as_ref().is_none_or(|c| c.about(a, b))).collect()
            }
            _ => vec![],
        }
    }

    /// May `a` and `b` share this store? Their cell, and each footnote of it that concerns them: it
    /// must be met. A cell marked "no, except" (`["no", "4"]`, the chart's X(4)) allows the pair only
    /// through a footnote that concerns it and is met. The same item type is never judged against
    /// itself (two lots of one L item are identical items).
    pub fn judge_pair(&self, a: &Held, b: &Held, store: &StoreFacts) -> Result<(), String> {
        if a.item_type == b.item_type {
            return Ok(());
        }
        let (ga, gb) = (a.classification.group, b.classification.group);
        let (notes, except) = match self.mixing_cell(ga, gb) {
            crate::MixingCell::Yes => return Ok(()),
            crate::MixingCell::No => return Err(format!("mixing chart {ga}/{gb}: never")),
            crate::MixingCell::Footnotes { notes, except } => (notes, except),
        };
        let concerned: Vec<&crate::Footnote> = notes.iter().filter(|n| n.concerns.as_ref().is_none_or(|c| c.about(a, b))).collect();
        for n in &concerned {
            let unmet = match &n.condition {
                Condition::Relabel => None,
                Condition::Flag(f) => (!store.flags.contains(f)).then(|| format!("the location is not flagged {f}")),
                Condition::Identical => Some(format!("{} and {} are different item types", a.item_type, b.item_type)),
                Condition::Absent(attr) => {
                    store.attributes.get(attr).map(|who| format!("the store holds {who}, which is {}", attr.replace('_', " ")))
                }
                Condition::Never => Some("they may not share a store".to_string()),
            };
            if let Some(why) = unmet {
                return Err(format!("mixing chart {ga}/{gb}: footnote {} ({}) applies: {why}", n.id, n.label));
            }
        }
        if except && concerned.is_empty() {
            let ids: Vec<String> = notes.iter().map(|n| format!("{} ({})", n.id, n.label)).collect();
            return Err(format!(
                "mixing chart {ga}/{gb}: never, except as footnote {} allows, which concerns neither item",
                ids.join(" or ")
            ));
        }
        Ok(())
    }

    /// A whole store judged pair by pair (the property the movement checks keep).
    pub fn judge_store(&self, items: &[Held], flags: &[String]) -> Result<(), String> {
        let mut attributes = BTreeMap::new();
        for h in items {
            for a in h.attributes {
                attributes.entry(a.clone()).or_insert_with(|| h.label.to_string());
            }
        }
        let facts = StoreFacts { flags, attributes: &attributes };
        for (i, a) in items.iter().enumerate() {
            for b in &items[i + 1..] {
                self.judge_pair(a, b, &facts).map_err(|e| format!("{} with {}: {e}", a.label, b.label))?;
            }
        }
        Ok(())
    }
}
