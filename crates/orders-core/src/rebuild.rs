//! What a rebuild of the analytics writes while the stream keeps counting.
//!
//! A rebuild folds the orders table (the source of truth) and claims every event of the
//! orders it covers in the event-claims table: from then on the stream skips those events.
//! An event the stream claimed first is the stream's to count. Per counter item, the stream
//! has counted such an event if the item's watermark for the event's shard has passed the
//! event's record; if not, it will, so the rebuild leaves that much out. The result is
//! exact whatever the stream does before, during or after the rebuild — as long as the
//! item's watermarks are still the ones read when it is written (the adapter's condition).

use crate::analytics::{CounterItem, Effect, Fold, ItemDelta};
use crate::event::EventEnvelope;
use crate::sequence;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// An event the stream owns: its record's shard and sequence number, and what it adds to
/// each counter item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOwned {
    pub shard: String,
    pub sequence: String,
    pub counters: BTreeMap<CounterItem, ItemDelta>,
}

impl StreamOwned {
    /// `event`, owned by the stream record at `position` (`<shard>/<sequence>`, as claims
    /// store it); `None` for a position that is not a stream record's.
    pub fn at(event: &EventEnvelope, position: &str) -> Option<Self> {
        let (shard, sequence) = position.split_once('/')?;
        let mut adds = Fold::default();
        adds.add(&Effect::of(event));
        Some(Self {
            shard: shard.to_owned(),
            sequence: sequence.to_owned(),
            counters: adds.counters,
        })
    }
}

/// What `item` must hold now: what the orders add up to (`fold`), less what the stream
/// owns and has not yet added to it (its record is past the item's watermark for its shard).
pub fn target(
    item: &CounterItem,
    fold: &Fold,
    watermarks: &BTreeMap<String, String>,
    owned: &[StreamOwned],
) -> ItemDelta {
    let mut want = fold.counters.get(item).cloned().unwrap_or_default();
    for event in owned {
        let counted = watermarks
            .get(&event.shard)
            .is_some_and(|w| sequence::compare(&event.sequence, w) != Ordering::Greater);
        if !counted && let Some(delta) = event.counters.get(item) {
            want.subtract(delta);
        }
    }
    want
}
