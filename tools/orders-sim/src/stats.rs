//! Latency summaries computed exactly from the samples (no histograms, no interpolation).

use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// The nearest-rank percentile of ascending `sorted` samples: the smallest sample such that
/// at least `p`% of all samples are less than or equal to it. `None` when there are none.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Count, errors and latency figures of one route, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub route: String,
    pub count: usize,
    pub errors: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// `samples` are the latencies of every request, failed ones included.
    pub fn new(route: &str, samples: &[Duration], errors: usize) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let at = |p| percentile(&ms, p).unwrap_or(0.0);
        let mean = if ms.is_empty() {
            0.0
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Self {
            route: route.to_owned(),
            count: ms.len(),
            errors,
            min_ms: at(0.0),
            p50_ms: at(50.0),
            p90_ms: at(90.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
            max_ms: at(100.0),
            mean_ms: mean,
        }
    }
}

/// Writes summaries as an aligned table.
pub fn write_table(out: &mut impl Write, rows: &[Summary]) -> std::io::Result<()> {
    let width = rows.iter().map(|r| r.route.len()).max().unwrap_or(5).max(5);
    writeln!(
        out,
        "{:<width$} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "route", "count", "errors", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "mean ms"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<width$} {:>6} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            r.route, r.count, r.errors, r.p50_ms, r.p90_ms, r.p95_ms, r.p99_ms, r.max_ms, r.mean_ms
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 99.5), Some(100));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));

        // Small samples: the textbook example (15, 20, 35, 40, 50).
        let w = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&w, 5.0), Some(15));
        assert_eq!(percentile(&w, 30.0), Some(20));
        assert_eq!(percentile(&w, 40.0), Some(20));
        assert_eq!(percentile(&w, 50.0), Some(35));
        assert_eq!(percentile(&w, 100.0), Some(50));

        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn summary_sorts_and_averages() {
        let samples: Vec<Duration> = [4u64, 1, 3, 2]
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect();
        let s = Summary::new("GET /x", &samples, 1);
        assert_eq!((s.count, s.errors), (4, 1));
        assert_eq!((s.min_ms, s.p50_ms, s.max_ms), (1.0, 2.0, 4.0));
        assert_eq!(s.p99_ms, 4.0);
        assert!((s.mean_ms - 2.5).abs() < 1e-9);
        let mut table = Vec::new();
        write_table(&mut table, std::slice::from_ref(&s)).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.starts_with("route "), "{table}");
        assert!(table.contains("GET /x"), "{table}");
        let empty = Summary::new("GET /y", &[], 0);
        assert_eq!((empty.count, empty.p50_ms, empty.mean_ms), (0, 0.0, 0.0));
    }
}
