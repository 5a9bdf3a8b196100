//! The duty officer's and the incident desk's command arguments: incidents, notifications,
//! directives, armory access control.

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Open an incident by hand.
    Open {
        /// loss, theft, count_discrepancy, excursion, unauthorized_access, door_forced, door_held_open,
        /// duress, lone_person, overstay, count_missed, safety_refusal, overdue_return, directive_missed,
        /// ledger_fork, accident, other
        #[arg(long)]
        kind: String,
        /// low, medium, high, critical
        #[arg(long)]
        severity: String,
        /// The id of the unit responsible for it.
        #[arg(long)]
        unit: String,
        /// The location id where it happened.
        #[arg(long)]
        location: Option<String>,
        /// A serial concerned (repeatable).
        #[arg(long = "serial")]
        serials: Vec<String>,
        /// A lot number concerned (repeatable).
        #[arg(long = "lot")]
        lots: Vec<String>,
        /// Badge number of a person concerned (repeatable).
        #[arg(long = "badge")]
        badges: Vec<String>,
        /// What happened, in a sentence or two.
        #[arg(long)]
        summary: String,
        /// When it was discovered (RFC 3339, default now).
        #[arg(long)]
        discovered_at: Option<String>,
    },
    /// One incident: its facts, clocks, resolution and the entries about it.
    Show {
        /// The incident's id, e.g. I-3.
        incident: String,
    },
    /// Acknowledge: someone responsible has seen it.
    Ack {
        /// The incident's id, e.g. I-3.
        incident: String,
    },
    /// Record that it is being investigated.
    Investigate {
        /// The incident's id, e.g. I-3.
        incident: String,
    },
    /// Add a note to it.
    Note {
        /// The incident's id, e.g. I-3.
        incident: String,
        /// The note, e.g. "door lock replaced".
        text: String,
    },
    /// Pass it to a unit above (default: the unit above the one responsible now).
    Escalate {
        /// The incident's id, e.g. I-3.
        incident: String,
        /// The id of the unit it goes to: any unit above the one responsible now.
        #[arg(long)]
        to: Option<String>,
        /// Why it is escalated (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Record that a report an obligation requires was made.
    Report {
        /// The incident's id, e.g. I-3.
        incident: String,
        /// The obligation's id in the incident rules, e.g. us-firearms-theft-loss (`qm incident show`
        /// names those that apply).
        #[arg(long)]
        obligation: String,
        /// To whom it was made, e.g. ATF.
        #[arg(long)]
        authority: String,
        /// The report's reference there, e.g. ATF-2026-118.
        #[arg(long)]
        reference: String,
        /// When it was made (RFC 3339, default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Close it with its resolution (a critical one with a witness).
    Close {
        /// The incident's id, e.g. I-3.
        incident: String,
        /// How it ended, e.g. "rifle found in the cleaning room".
        #[arg(long)]
        resolution: String,
    },
    /// Reopen a closed incident.
    Reopen {
        /// The incident's id, e.g. I-3.
        incident: String,
        /// Why it is reopened (recorded).
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
        /// The most messages shown.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Check a notifications file against the books: units, badges, webhooks, addresses, secrets;
    /// then say who each rule tells of an incident at each unit it covers.
    Check {
        /// The notifications file (TOML, docs/notifications.md).
        file: String,
    },
    /// Try an undelivered message again at once (a running server's next round).
    Retry {
        /// The message's id (`qm notifications list`).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DirectiveCmd {
    /// Issue a directive at a unit for its subtree (or the parts named by --applies-to).
    Issue {
        /// The id of the issuing unit: the directive concerns the units below it.
        #[arg(long)]
        unit: String,
        /// A short title, e.g. "Inspection visit".
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
        /// Only this unit below the issuing one, and its subtree (repeatable; default: all below).
        #[arg(long = "applies-to")]
        applies_to: Vec<String>,
        /// two-person, rounds-cap=N, transfer-freeze=ROLE, issue-hours=HH:MM-HH:MM, counter-not-keeper,
        /// blind-counts, count=Nh[/Md], transfer-review=Nh/Md, storage-review=Nh/Mh, access-review=Nh,
        /// two-person-entry[=Nm], entry-hours=HH:MM-HH:MM, max-inside=Nm (repeatable; docs/directives.md)
        #[arg(long = "measure")]
        measures: Vec<String>,
    },
    /// Relay it to the units below, with instructions and measures of your own (tightening only).
    Relay {
        /// The directive's id, e.g. DIR-2.hq.example.
        directive: String,
        /// The id of the unit relaying it (yours, or one below it).
        #[arg(long)]
        unit: String,
        /// Your instructions to the units below.
        #[arg(long)]
        text: String,
        /// A measure of your own, written as for `qm directive issue --measure` (repeatable).
        #[arg(long = "measure")]
        measures: Vec<String>,
    },
    /// Acknowledge it for a unit (its officer).
    Ack {
        /// The directive's id, e.g. DIR-2.hq.example.
        directive: String,
        /// The id of the unit acknowledging it.
        #[arg(long)]
        unit: String,
    },
    /// The shift briefing: you have read it and answer for the stock in your care.
    Brief {
        /// The directive's id, e.g. DIR-2.hq.example.
        directive: String,
        /// Where you are on duty (default: your unit).
        #[arg(long)]
        unit: Option<String>,
    },
    /// Sign off a review task for a unit (transfer_review, storage_review, access_review).
    SignOff {
        /// The directive's id, e.g. DIR-2.hq.example.
        directive: String,
        /// The id of the unit whose review it is.
        #[arg(long)]
        unit: String,
        /// transfer_review, storage_review or access_review.
        #[arg(long)]
        task: String,
        /// What the review found (recorded with what the books showed).
        #[arg(long)]
        note: String,
        /// A transfer the review found wrong, raised as a discrepancy: `T-3: why` (repeatable).
        #[arg(long = "raise")]
        raise: Vec<String>,
    },
    /// Make it run longer (its issuer or above).
    Extend {
        /// The directive's id, e.g. DIR-2.hq.example.
        directive: String,
        /// The new end (RFC 3339).
        #[arg(long)]
        end: String,
        /// Why it runs longer (recorded).
        #[arg(long)]
        reason: String,
    },
    /// End it now (its issuer or above).
    Cancel {
        /// The directive's id, e.g. DIR-2.hq.example.
        directive: String,
        /// Why it ends (recorded).
        #[arg(long)]
        reason: String,
    },
    /// One directive: its text, period, measures, relays and how many units acknowledged it.
    Show {
        /// The directive's id, e.g. DIR-2.hq.example.
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
    Roster {
        /// An armory, depot or magazine (its location id).
        location: String,
    },
    /// Put a person on a place's roster (or change their role or hours).
    Grant {
        /// An armory, depot or magazine (its location id).
        location: String,
        /// Badge number of the person.
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
        /// Why they are granted entry (recorded), e.g. "day armorer".
        #[arg(long)]
        reason: String,
    },
    /// Take a person off a place's roster.
    Revoke {
        /// An armory, depot or magazine (its location id).
        location: String,
        /// Badge number of the person.
        badge: String,
        /// Why they are taken off (recorded).
        #[arg(long)]
        reason: String,
    },
    /// A place's door events of a day (default today), newest first, as the rules judged them.
    Log {
        /// A place; or --unmapped for doors mapped to no place.
        location: Option<String>,
        /// The day, YYYY-MM-DD in the site's time zone.
        #[arg(long)]
        date: Option<String>,
        /// The events of doors mapped to no place (unknown doors), instead of a place's.
        #[arg(long)]
        unmapped: bool,
        /// The most events shown.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// The door terminal from the command line: the person (--actor, PIN in QM_PIN) enters or
    /// leaves a place, granted or refused by the same rules.
    Door {
        /// An armory, depot or magazine (its location id).
        location: String,
        /// Record leaving instead of entering.
        #[arg(long)]
        exit: bool,
    },
}
