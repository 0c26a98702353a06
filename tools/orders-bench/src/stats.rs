//! Latency summaries: the simulator's (`orders_sim::stats`), printed to stdout.

pub use orders_sim::stats::{Summary, percentile};

/// Prints summaries as an aligned table on stdout.
pub fn print_table(rows: &[Summary]) {
    // A closed stdout (`| head`) is no reason to fail a benchmark that already ran.
    let _ = orders_sim::stats::write_table(&mut std::io::stdout().lock(), rows);
}
