//! The administrator's command arguments: units, locations, the catalog, staff and their
//! credentials, a unit's policy, the organization's adopted rules, API tokens.

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum UnitCmd {
    /// Add a unit to the organization tree, under a parent unit.
    Add {
        /// The new unit's id: letters, digits and . _ - / (e.g. D-11).
        id: String,
        /// The unit's name, e.g. "Riverside Department".
        #[arg(long)]
        name: String,
        /// The id of the unit it belongs under (e.g. HQ).
        #[arg(long)]
        parent: String,
    },
    /// The unit tree.
    List,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing would only add noise
pub enum LocationCmd {
    /// Add a location (an armory, depot or magazine, or a room, rack, locker, safe or bin inside
    /// one) to a unit.
    Add {
        /// The new location's id: letters, digits and . _ - / (e.g. D11-RACK-A).
        id: String,
        /// The location's name, e.g. "Rack A".
        #[arg(long)]
        name: String,
        /// The id of the unit it belongs to.
        #[arg(long)]
        unit: String,
        /// armory, depot, magazine, room, rack, locker, safe or bin.
        #[arg(long)]
        kind: String,
        /// The location it is inside, of the same unit (e.g. the armory a rack stands in).
        #[arg(long)]
        parent: Option<String>,
        /// Badge number of the person who keeps it.
        #[arg(long)]
        keeper: Option<String>,
        /// Magazines: licensed NEQ limit in kg.
        #[arg(long)]
        neq_limit_kg: Option<f64>,
        /// Magazines: hazard divisions allowed, e.g. 1.1,1.4.
        #[arg(long, value_delimiter = ',')]
        hazard_divisions: Vec<String>,
        /// Magazines: compatibility groups allowed, e.g. D,S.
        #[arg(long, value_delimiter = ',')]
        compatibility_groups: Vec<String>,
        /// Magazines: distance to an exposed site, KIND=METRES (repeatable).
        #[arg(long)]
        distance: Vec<String>,
    },
    /// The locations: kind, name, unit, parent and keeper.
    List,
    /// Safety settings: condition flags for the mixing chart's footnotes, and the storage band.
    /// They replace the location's settings: a flag or a band left out is cleared.
    Safety {
        /// The location's id.
        id: String,
        /// A condition the mixing chart's footnotes ask of a place, e.g. detonator_provisions
        /// (repeatable; docs/safety.md).
        #[arg(long)]
        flag: Vec<String>,
        /// MIN:MAX in °C.
        #[arg(long)]
        temperature_c: Option<String>,
        /// MIN:MAX in % RH.
        #[arg(long)]
        humidity_pct: Option<String>,
        /// Minutes out of band before an excursion is recorded (default 60).
        #[arg(long)]
        excursion_minutes: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ItemTypeCmd {
    /// Add an item type to the catalog.
    Add {
        /// The new item type's id: letters, digits and . _ - / (e.g. RIFLE-G36).
        id: String,
        /// The item type's name, e.g. "Rifle G36".
        #[arg(long)]
        name: String,
        /// weapon, ammunition, explosive, component, key or accessory.
        #[arg(long)]
        kind: String,
        /// serial (each item by its serial number), lot (quantities of a lot number) or both
        /// (serial-numbered items that belong to a lot).
        #[arg(long)]
        tracking: String,
        /// What a quantity counts, e.g. round or kg.
        #[arg(long, default_value = "each")]
        unit_of_measure: String,
        /// Net explosive quantity of one unit of measure, in kg (0 for none).
        #[arg(long, default_value_t = 0.0)]
        neq_kg_per_unit: f64,
        /// UN hazard classification: division and compatibility group, e.g. 1.1D or 1.4S.
        #[arg(long)]
        un_code: Option<String>,
        /// A qualification a person must hold, unexpired, to be issued one, e.g. G36
        /// (granted with `qm person qualify`).
        #[arg(long)]
        qualification: Option<String>,
    },
    /// The catalog: kind, tracking, unit of measure, NEQ, UN code and name of each item type.
    List,
    /// What the mixing chart's footnotes are about, for an item type (replacing what it had; none
    /// clears): detonator, firework, special_handling, substance in the shipped tables (docs/safety.md).
    Attributes {
        /// The item type's id.
        id: String,
        /// The attributes, separated by spaces or commas; on a key, also opens:LOCATION (docs/access.md).
        attributes: Vec<String>,
    },
    /// The storage range an item type needs.
    Storage {
        /// The item type's id.
        id: String,
        /// MIN:MAX in °C.
        #[arg(long)]
        temperature_c: Option<String>,
        /// MIN:MAX in % RH.
        #[arg(long)]
        humidity_pct: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PersonCmd {
    /// Register a person: badge, name, unit, roles and PIN.
    Add {
        /// The person's badge number, e.g. 0417.
        badge: String,
        /// The person's name, e.g. "J. Armstrong".
        #[arg(long)]
        name: String,
        /// The id of the unit they belong to.
        #[arg(long)]
        unit: String,
        /// Roles, comma-separated: armorer, magazine_keeper, duty_officer, inspector, logistics, admin,
        /// member (docs/permissions.md).
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// The new person's PIN (prefer QM_NEW_PIN).
        #[arg(long, env = "QM_NEW_PIN", hide_env_values = true)]
        new_pin: String,
    },
    /// Set a new PIN (QM_NEW_PIN) for a person: your own, or anyone's in your subtree as administrator.
    Pin {
        /// Badge number of the person whose PIN is set.
        badge: String,
        /// The new PIN (prefer QM_NEW_PIN).
        #[arg(long, env = "QM_NEW_PIN", hide_env_values = true)]
        new_pin: String,
    },
    /// Set a duress PIN (QM_NEW_PIN) for yourself: at a door terminal it opens the door as your PIN
    /// does and silently raises the alarm (docs/access.md).
    DuressPin {
        /// Your own badge number: a duress PIN is set by its holder alone.
        badge: String,
        /// The duress PIN, different from your PIN (prefer QM_NEW_PIN).
        #[arg(long, env = "QM_NEW_PIN", hide_env_values = true)]
        new_pin: String,
    },
    /// Set a web sign-in password (QM_NEW_PASSWORD) for a person.
    Password {
        /// Badge number of the person whose password is set.
        badge: String,
        /// The new password, at least 10 characters (prefer QM_NEW_PASSWORD).
        #[arg(long, env = "QM_NEW_PASSWORD", hide_env_values = true)]
        new_password: String,
    },
    /// Grant a person a qualification until a date (an item type that names it is issued only to
    /// people who hold it, unexpired).
    Qualify {
        /// The person's badge number.
        badge: String,
        /// The qualification, as item types name it, e.g. G36.
        qualification: String,
        /// The last day it is valid, YYYY-MM-DD.
        #[arg(long)]
        expires: String,
    },
    /// Suspend a person: they may not sign in, act, witness or be issued anything until restored;
    /// what they hold stays on their name.
    Suspend {
        /// The person's badge number.
        badge: String,
        /// Why, recorded in the ledger.
        #[arg(long)]
        reason: String,
    },
    /// Restore a suspended person.
    Restore {
        /// The person's badge number.
        badge: String,
        /// Why, recorded in the ledger.
        #[arg(long)]
        reason: String,
    },
    /// Give a person other roles: every role they hold from now on.
    Roles {
        /// The person's badge number.
        badge: String,
        /// Roles, comma-separated (docs/permissions.md).
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
    },
    /// Staff: badge, name, unit, roles, qualifications and their expiry, suspension, holdings, keys.
    List {
        /// Only this unit and the units under it.
        #[arg(long)]
        unit: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Adopt a TOML file (read as such first) as the organization's rules of that kind.
    Adopt {
        /// incident-rules or safety-tables.
        kind: String,
        /// The TOML file (the format of `--incident-rules` or `--safety-tables`).
        file: String,
    },
    /// The rules adopted in the ledger: which, when, from which site, their SHA-256.
    List,
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// The unit whose policy is set: it holds for the unit's whole subtree.
    pub unit: String,
    /// Any movement of explosives (items with NEQ, or of kind explosive or component) needs a witness.
    #[arg(long)]
    pub two_person_explosives: bool,
    /// Every movement needs a witness.
    #[arg(long)]
    pub two_person_all_movements: bool,
    /// Approving a count's discrepancy needs a witness.
    #[arg(long)]
    pub two_person_count_resolution: bool,
    /// The counter may not be the keeper of a location in the counted subtree.
    #[arg(long)]
    pub counter_not_keeper: bool,
    /// The counter may not be the person who did the previous count of that location.
    #[arg(long)]
    pub counter_not_previous: bool,
    /// The most ammunition one issue may carry, in the item type's unit of measure (e.g. 60 rounds).
    #[arg(long)]
    pub max_issue_quantity: Option<String>,
    /// Nobody alone in an armory, depot or magazine: a second person within --partner-within-min (docs/access.md).
    #[arg(long)]
    pub two_person_entry: bool,
    /// Minutes within which the second person must follow under two-person entry (default 5).
    #[arg(long)]
    pub partner_within_min: Option<u16>,
    /// The longest anyone may stay inside an armory, depot or magazine, in minutes.
    #[arg(long)]
    pub max_inside_min: Option<u32>,
    /// Every armory, depot and magazine below the unit counted in full at least this often, in
    /// days (the count schedule of `qm counts --schedule` and the dashboard; docs/counts.md).
    #[arg(long)]
    pub full_count_every_days: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue a token scoped to a unit subtree and operations; prints the secret once.
    Issue {
        /// The token's id, your choice (e.g. scanner-d11); the token printed is ID.SECRET.
        id: String,
        /// What or who uses it, e.g. "Counter scanner, D-11".
        #[arg(long)]
        label: String,
        /// The unit whose subtree it may act in.
        #[arg(long)]
        unit: String,
        /// Operations the token may perform (see `qm permissions`), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        operations: Vec<String>,
        /// The badge it acts as (a person, or a device registered as staff with the roles it needs);
        /// without it, the token acts as you.
        #[arg(long = "for", value_name = "BADGE")]
        acts_as: Option<String>,
    },
    /// Revoke a token: it is refused from then on.
    Revoke {
        /// The token's id.
        id: String,
        /// Why it is revoked (recorded).
        #[arg(long)]
        reason: String,
    },
}
