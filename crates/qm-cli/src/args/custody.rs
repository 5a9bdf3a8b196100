//! The counter's and the store's command arguments beyond the top level: transfers between units,
//! where stock is written off from, a lot's status.

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct FromAccount {
    /// A location.
    #[arg(long, conflicts_with = "from_person", required_unless_present = "from_person")]
    pub from: Option<String>,
    /// A person's custody.
    #[arg(long)]
    pub from_person: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TransferCmd {
    /// Send items to another unit: they are in transit until that unit receives them.
    Dispatch {
        /// The location id they leave from.
        #[arg(long)]
        from: String,
        /// The id of the unit they are sent to.
        #[arg(long)]
        to_unit: String,
        /// The transfer document's reference, e.g. TR-114.
        #[arg(long)]
        document: Option<String>,
        /// Items: SERIAL, or LOT:QTY for a quantity of a lot (e.g. R-1042 L556-07:500).
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Receive a transfer, with the quantities actually received.
    Receive {
        /// The transfer's id, e.g. T-1 (`qm transfers`).
        transfer: String,
        /// The location id, in the receiving unit, where they are put.
        #[arg(long)]
        to: String,
        /// What arrived: SERIAL or LOT:QTY; what was sent and is not listed is a shortage, a
        /// discrepancy to resolve.
        items: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LotCmd {
    /// Suspend, reinstate or condemn a lot for a unit's subtree (default: your unit).
    Status {
        /// The lot number, e.g. L556-07.
        lot: String,
        /// serviceable (reinstated), suspended or unserviceable (condemned).
        status: String,
        /// Why (recorded with the decision).
        #[arg(long)]
        reason: String,
        /// The unit whose subtree the decision covers.
        #[arg(long)]
        unit: Option<String>,
    },
}
