//! The duty officer's and the incident desk's command arguments: incidents, notifications,
//! directives, armory access control.

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Open an incident by hand.
    Open {
        /// loss, theft, count_discrepancy, excursion, unauthorized_access, door_forced, door_held_open,
        /// safety_refusal, overdue_return, directive_missed, accident, other
        #[arg(long)]
        kind: String,
        /// low, medium, high, critical
        #[arg(long)]
        severity: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        location: Option<String>,
        #[arg(long = "serial")]
        serials: Vec<String>,
        #[arg(long = "lot")]
        lots: Vec<String>,
        #[arg(long = "badge")]
        badges: Vec<String>,
        #[arg(long)]
        summary: String,
        /// When it was discovered (RFC 3339, default now).
        #[arg(long)]
        discovered_at: Option<String>,
    },
    Show {
        incident: String,
    },
    /// Acknowledge: someone responsible has seen it.
    Ack {
        incident: String,
    },
    Investigate {
        incident: String,
    },
    Note {
        incident: String,
        text: String,
    },
    /// Pass it to a unit above (default: the unit above the one responsible now).
    Escalate {
        incident: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Record that a report an obligation requires was made.
    Report {
        incident: String,
        #[arg(long)]
        obligation: String,
        #[arg(long)]
        authority: String,
        #[arg(long)]
        reference: String,
        /// When it was made (RFC 3339, default now).
        #[arg(long)]
        at: Option<String>,
    },
    Close {
        incident: String,
        #[arg(long)]
        resolution: String,
    },
    Reopen {
        incident: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum NotifyCmd {
    /// Messages in the outbox, newest first: delivered, waiting, or failing with the last error.
    List {
        /// Only those not delivered yet.
        #[arg(long)]
        pending: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Check a notifications file against the books: units, badges, webhooks, addresses, secrets;
    /// then say who each rule tells of an incident at each unit it covers.
    Check { file: String },
    /// Try an undelivered message again at once (a running server's next round).
    Retry { id: String },
}

#[derive(Subcommand, Debug)]
pub enum DirectiveCmd {
    /// Issue a directive at a unit for its subtree (or the parts named by --applies-to).
    Issue {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        title: String,
        /// The order in the issuer's words: the reason and what is expected.
        #[arg(long)]
        text: String,
        /// A posture level of the organization (shipped: normal, heightened, high, maximum).
        #[arg(long)]
        posture: String,
        /// When it starts (RFC 3339; default now).
        #[arg(long)]
        start: Option<String>,
        /// When it ends (RFC 3339), or --days.
        #[arg(long, conflicts_with = "days")]
        end: Option<String>,
        /// How many days it runs from its start.
        #[arg(long)]
        days: Option<u32>,
        #[arg(long = "applies-to")]
        applies_to: Vec<String>,
        /// two-person, rounds-cap=N, transfer-freeze=ROLE, issue-hours=HH:MM-HH:MM, counter-not-keeper,
        /// blind-counts, count=Nh[/Md], transfer-review=Nh/Md, storage-review=Nh/Mh, access-review=Nh
        #[arg(long = "measure")]
        measures: Vec<String>,
    },
    /// Relay it to the units below, with instructions and measures of your own (tightening only).
    Relay {
        directive: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        text: String,
        #[arg(long = "measure")]
        measures: Vec<String>,
    },
    /// Acknowledge it for a unit (its officer).
    Ack {
        directive: String,
        #[arg(long)]
        unit: String,
    },
    /// The shift briefing: you have read it and answer for the stock in your care.
    Brief {
        directive: String,
        /// Where you are on duty (default: your unit).
        #[arg(long)]
        unit: Option<String>,
    },
    /// Sign off a review task for a unit (transfer_review, storage_review, access_review).
    SignOff {
        directive: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        task: String,
        #[arg(long)]
        note: String,
        /// A transfer the review found wrong, raised as a discrepancy: `T-3: why` (repeatable).
        #[arg(long = "raise")]
        raise: Vec<String>,
    },
    /// Make it run longer (its issuer or above).
    Extend {
        directive: String,
        /// The new end (RFC 3339).
        #[arg(long)]
        end: String,
        #[arg(long)]
        reason: String,
    },
    /// End it now (its issuer or above).
    Cancel {
        directive: String,
        #[arg(long)]
        reason: String,
    },
    Show {
        directive: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessCmd {
    /// Every armory, depot and magazine with who is inside now (or one place's roster).
    Inside {
        /// Only this place.
        location: Option<String>,
    },
    /// A place's roster: who may enter, in which role, when.
    Roster { location: String },
    /// Put a person on a place's roster (or change their role or hours).
    Grant {
        location: String,
        badge: String,
        /// The role they enter in (one of theirs).
        #[arg(long)]
        role: String,
        /// `always`, or windows like 'mon-fri 07:00-19:00; sat 08:00-12:00' in the site's zone.
        #[arg(long)]
        hours: String,
        /// A dated exception: 2026-12-25=closed, 2026-12-24=08:00-12:00 (repeatable).
        #[arg(long = "except")]
        except: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Take a person off a place's roster.
    Revoke {
        location: String,
        badge: String,
        #[arg(long)]
        reason: String,
    },
    /// A place's door events of a day (default today), newest first, as the rules judged them.
    Log {
        /// A place; or --unmapped for doors mapped to no place.
        location: Option<String>,
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        unmapped: bool,
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// The door terminal from the command line: the person (--actor, PIN in QM_PIN) enters or
    /// leaves a place, granted or refused by the same rules.
    Door {
        location: String,
        /// Record leaving instead of entering.
        #[arg(long)]
        exit: bool,
    },
}
