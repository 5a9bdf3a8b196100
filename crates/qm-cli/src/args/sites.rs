//! Many sites' command arguments beyond the top level: this site as the witness of its children,
//! and `qm sync` on removable media (docs/sites.md).

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum WitnessCmd {
    /// This site's witness and mirror keys, for its children's `--parent-key` and
    /// `--parent-mirror-key` (made the first time).
    Key,
    /// A child's request brought on removable media (`qm sync export` there): checked as a push
    /// is; the answer, the cosigned checkpoint, written to ANSWER for the way back.
    Import {
        /// The request file.
        file: String,
        /// Where the answer is written.
        #[arg(long)]
        answer: String,
    },
    /// The child sites witnessed: the latest checkpoint cosigned for each and when, and how much of
    /// each ledger the mirror holds, verified.
    Status,
    /// Signed checkpoints of a child that contradict each other, kept as evidence.
    Evidence,
    /// The children's books as their mirrored ledgers replay them: each site in brief and the stock
    /// of each item type over all sites; with ORIGIN, that site's stock, open incidents, transfers
    /// in transit and directives in force.
    Books {
        /// A child site's origin (its name).
        origin: Option<String>,
    },
    /// A directive at every child site, from their mirrored ledgers: received or not, its units
    /// acknowledged, people briefed.
    Compliance {
        /// The directive, e.g. DIR-3.hq.example.
        directive: String,
    },
    /// Transfers between the child sites, matched from both ledgers: received as sent, with
    /// differences, awaited or overdue.
    Transfers,
}

#[derive(Subcommand, Debug)]
pub enum SyncMedia {
    /// Write what `qm sync` would send (the latest checkpoint, a consistency proof) to FILE.
    Export {
        /// Where the request is written; with --parent-mirror-key the entries go to FILE.entries
        /// beside it.
        file: String,
        /// The size the parent holds, when its answer to an earlier import said so (409).
        #[arg(long)]
        parent_held: Option<u64>,
        /// The size the parent's mirror holds, when its answer to an earlier import said so; by
        /// default the size it last cosigned here. Only with --parent-mirror-key.
        #[arg(long)]
        mirrored: Option<u64>,
    },
    /// Keep the parent's answer brought back (`qm witness import --answer` there), once its
    /// cosignature verifies with --parent-key.
    Import {
        /// The answer file brought back from the parent.
        file: String,
    },
    /// Where this site stands with its parent: entries cosigned, when, how many wait.
    Status,
}
