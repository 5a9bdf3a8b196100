//! Explosives and ammunition command arguments beyond the top level: storage-condition readings
//! and the daily summary of magazine transactions.

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ConditionsCmd {
    /// Record one reading.
    Record {
        /// The location id where it was read.
        location: String,
        /// Temperature in °C.
        #[arg(long)]
        temperature_c: Option<f64>,
        /// Relative humidity in %.
        #[arg(long)]
        humidity_pct: Option<f64>,
        /// When it was read (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Import readings from CSV: location,at,temperature_c,humidity_pct.
    Import {
        /// The CSV file, with a header row; `at` in RFC 3339.
        file: String,
    },
    /// A place's series, band and excursions; with --svg, a chart.
    Show {
        /// The location id.
        location: String,
        /// YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        since: String,
        /// End of the period: YYYY-MM-DD or RFC 3339 (default now).
        #[arg(long)]
        until: Option<String>,
        /// Also write the chart, the band shaded and excursions marked, to this SVG file.
        #[arg(long)]
        svg: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Daily summary of magazine transactions (27 CFR 555.127).
    Dsmt {
        /// The magazine's location id (the report covers the places inside it too).
        #[arg(long)]
        magazine: String,
        /// YYYY-MM-DD (UTC day).
        #[arg(long)]
        date: String,
        /// text, csv or json.
        #[arg(long, default_value = "text")]
        format: String,
    },
}
