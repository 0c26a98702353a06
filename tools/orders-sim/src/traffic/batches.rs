//! The run's storefront events grouped into `POST /events` batches, as a storefront backend
//! relaying its shoppers' events sends them: in the order they happened, a varying number at
//! a time (at most `batch_events`).
//!
//! With a `redeliver_ratio`, some batches are delivered again a little later, as a client
//! that got no answer does: **resent** unchanged, or **regrouped** — the same events split
//! differently, together with the next batch's. Every copy is sent after the events' first
//! delivery; the server must count each event once, by its session and `eventId`. Drawn from
//! the run's seed on a stream of its own. Pure.

use super::sessions::SessionSettings;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

const BATCH_STREAM: u64 = 0xBA7C_4E50;

/// How a batch came to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The events' first delivery.
    First,
    /// A first batch again, unchanged.
    Resent,
    /// Events already delivered, grouped otherwise than at first.
    Regrouped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub delivery: Delivery,
    /// Indices into the run's events, ascending.
    pub events: Vec<usize>,
}

/// The batches of `events` events, in sending order.
pub fn plan(events: usize, settings: &SessionSettings, seed: u64) -> Vec<Batch> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ BATCH_STREAM);
    let max = settings.batch_events.max(1);
    let mut firsts: Vec<Vec<usize>> = Vec::new();
    let mut next = 0;
    while next < events {
        let size = rng.random_range(1..=max).min(events - next);
        firsts.push((next..next + size).collect());
        next += size;
    }
    let Some(last) = firsts.len().checked_sub(1) else {
        return Vec::new();
    };
    // copies[j]: the copies sent right after the j-th first batch.
    let mut copies: Vec<Vec<Batch>> = vec![Vec::new(); firsts.len()];
    for i in 0..firsts.len() {
        if !rng.random_bool(settings.redeliver_ratio) {
            continue;
        }
        let later = rng.random_range(0..4);
        if rng.random_bool(0.5) {
            let span = if i < last { 2 } else { 1 };
            let joined = firsts[i..i + span].concat();
            let sizes = other_sizes(firsts[i].len(), joined.len(), max);
            if !sizes.is_empty() {
                let size = sizes[rng.random_range(0..sizes.len())];
                let after = (i + span - 1 + later).min(last);
                copies[after].extend(joined.chunks(size).map(|chunk| Batch {
                    delivery: Delivery::Regrouped,
                    events: chunk.to_vec(),
                }));
                continue;
            }
            // One event alone cannot be split otherwise: it is resent as it was.
        }
        copies[(i + later).min(last)].push(Batch {
            delivery: Delivery::Resent,
            events: firsts[i].clone(),
        });
    }
    firsts
        .into_iter()
        .zip(copies)
        .flat_map(|(first, copies)| {
            std::iter::once(Batch {
                delivery: Delivery::First,
                events: first,
            })
            .chain(copies)
        })
        .collect()
}

/// Chunk sizes (at most `max`) that split `joined` events — a first batch of `first` and
/// the batch after it, if any — otherwise than their first delivery: any size but `first`.
fn other_sizes(first: usize, joined: usize, max: usize) -> Vec<usize> {
    (1..=max.min(joined)).filter(|&s| s != first).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn settings(batch_events: usize, redeliver_ratio: f64) -> SessionSettings {
        SessionSettings {
            batch_events,
            redeliver_ratio,
            ..SessionSettings::default()
        }
    }

    fn of(batches: &[Batch], delivery: Delivery) -> Vec<&Batch> {
        batches.iter().filter(|b| b.delivery == delivery).collect()
    }

    #[test]
    fn first_deliveries_send_every_event_once_in_order_within_the_limit() {
        for (events, max) in [(0, 50), (1, 50), (1_234, 50), (5_000, 500), (17, 1)] {
            let batches = plan(events, &settings(max, 0.0), 42);
            assert!(batches.iter().all(|b| b.delivery == Delivery::First));
            let sent: Vec<usize> = batches.iter().flat_map(|b| b.events.clone()).collect();
            assert_eq!(sent, (0..events).collect::<Vec<_>>());
            assert!(batches.iter().all(|b| (1..=max).contains(&b.events.len())));
        }
        // Sizes vary, and reach the limit.
        let sizes: BTreeSet<usize> = plan(5_000, &settings(500, 0.0), 1)
            .iter()
            .map(|b| b.events.len())
            .collect();
        assert!(sizes.len() > 5 && *sizes.last().unwrap() > 400, "{sizes:?}");
        assert_eq!(
            plan(300, &settings(20, 0.3), 9),
            plan(300, &settings(20, 0.3), 9)
        );
        assert_ne!(
            plan(300, &settings(20, 0.3), 9),
            plan(300, &settings(20, 0.3), 10)
        );
    }

    #[test]
    fn redeliveries_resend_or_regroup_events_already_delivered() {
        let batches = plan(2_000, &settings(40, 0.5), 7);
        let firsts = of(&batches, Delivery::First);
        let (resent, regrouped) = (
            of(&batches, Delivery::Resent),
            of(&batches, Delivery::Regrouped),
        );
        assert!(resent.len() > 5 && regrouped.len() > 5, "{batches:#?}");
        let first_groups: BTreeSet<&Vec<usize>> = firsts.iter().map(|b| &b.events).collect();
        for r in &resent {
            assert!(first_groups.contains(&r.events), "resent unchanged");
        }
        // Regrouped copies are split otherwise than any first batch: some group differs.
        assert!(regrouped.iter().any(|r| !first_groups.contains(&r.events)));
        // Every copy follows the first delivery of all its events; all within the limit.
        let mut delivered = vec![false; 2_000];
        let mut copies: HashMap<usize, usize> = HashMap::new();
        for b in &batches {
            assert!((1..=40).contains(&b.events.len()));
            for &e in &b.events {
                if b.delivery == Delivery::First {
                    assert!(!delivered[e], "one first delivery per event");
                    delivered[e] = true;
                } else {
                    assert!(
                        delivered[e],
                        "a copy of event {e} before its first delivery"
                    );
                    *copies.entry(e).or_default() += 1;
                }
            }
        }
        assert!(delivered.iter().all(|d| *d));
        assert!(
            copies.len() > 200 && copies.len() < 2_000,
            "{}",
            copies.len()
        );
    }

    #[test]
    fn regrouping_always_splits_otherwise() {
        for max in 1..=8 {
            for first in 1..=max {
                for next in 0..=max {
                    let joined: Vec<usize> = (0..first + next).collect();
                    let original: Vec<&[usize]> = [&joined[..first], &joined[first..]]
                        .into_iter()
                        .filter(|g| !g.is_empty())
                        .collect();
                    let sizes = other_sizes(first, joined.len(), max);
                    for size in &sizes {
                        let regrouped: Vec<&[usize]> = joined.chunks(*size).collect();
                        assert_ne!(regrouped, original, "{first} + {next} by {size}");
                        assert!(*size <= max);
                    }
                    // Only a lone event (or lone batch at the limit of 1) has no other split.
                    assert_eq!(
                        sizes.is_empty(),
                        joined.len() == 1 || max == 1,
                        "{first} {next} {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_single_event_is_resent_as_it_was() {
        let batches = plan(1, &settings(50, 1.0), 3);
        assert_eq!(batches.len(), 2, "{batches:#?}");
        assert_eq!(batches[1].delivery, Delivery::Resent);
        assert_eq!(batches[1].events, vec![0]);
    }
}
