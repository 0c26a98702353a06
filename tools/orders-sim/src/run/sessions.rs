//! Sending the storefront sessions, after the order traffic and as fast as `concurrency`
//! allows: their events in `POST /events` batches (copies included: `traffic::batches`),
//! each stamped as having happened up to an hour before the sending but not before the run
//! began (so two runs on one stack never share a minute); then the orders of the
//! carts whose checkout went through, on the order path (`Idempotency-Key`, follow-ups).

use super::{FollowUps, RunPlan, Shared, Source, lock, place_order};
use crate::api::{Api, Posted};
use crate::stats::Summary;
use crate::traffic::batches::{self, Batch, Delivery};
use crate::traffic::sessions::{EventKind, Session, SessionGenerator, batch_body, stamped_events};
use futures::stream::{self, StreamExt};
use orders_core::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the sessions sent and how the API answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReport {
    pub sessions: u64,
    pub signed_in: u64,
    pub checkouts: u64,
    /// Distinct events, each counted once however often it was delivered.
    pub events: u64,
    /// Events the API acknowledged (`202`) at least once: what the reconcile expects.
    pub events_acknowledged: u64,
    /// `POST /events` requests, copies included.
    pub batches: u64,
    /// Of the batches: copies sent unchanged / regrouped.
    pub resent: u64,
    pub regrouped: u64,
    /// Final answers to `POST /events` by status (`unreachable`: none after the retries).
    pub by_status: BTreeMap<String, u64>,
    /// Repeated attempts of a batch after transient failures (a `503`: resend it unchanged).
    pub retries: u64,
    /// Final answers to the checked-out carts' `POST /orders` by status.
    pub orders_by_status: BTreeMap<String, u64>,
    /// `POST /events`, request sent → answer read, retries included.
    pub latency: Summary,
}

#[derive(Debug, Default)]
pub(super) struct SessionTally {
    sessions: u64,
    signed_in: u64,
    checkouts: u64,
    events: u64,
    events_acknowledged: u64,
    batches: u64,
    resent: u64,
    regrouped: u64,
    by_status: BTreeMap<String, u64>,
    retries: u64,
    orders_by_status: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    failed_batches: usize,
}

impl SessionTally {
    pub(super) fn order_answer(&mut self, status: &str) {
        *self.orders_by_status.entry(status.to_owned()).or_default() += 1;
    }

    pub(super) fn report(&self) -> SessionReport {
        SessionReport {
            sessions: self.sessions,
            signed_in: self.signed_in,
            checkouts: self.checkouts,
            events: self.events,
            events_acknowledged: self.events_acknowledged,
            batches: self.batches,
            resent: self.resent,
            regrouped: self.regrouped,
            by_status: self.by_status.clone(),
            retries: self.retries,
            orders_by_status: self.orders_by_status.clone(),
            latency: Summary::new("POST /events", &self.latencies, self.failed_batches),
        }
    }
}

/// `started_at`: when the run began (Unix milliseconds); no event is dated before it.
pub(super) async fn send(
    api: &Api,
    plan: &RunPlan,
    started_at: i64,
    tally: &Shared,
    follow_ups: &FollowUps,
) {
    let settings = &plan.settings;
    let sessions: Vec<Session> = SessionGenerator::new(settings.clone()).collect();
    let events = stamped_events(&sessions, Timestamp::now().unix_millis(), started_at);
    let batches = batches::plan(events.len(), &settings.sessions, settings.seed);
    {
        let mut t = lock(tally);
        let s = &mut t.sessions;
        s.sessions = sessions.len() as u64;
        s.signed_in = sessions.iter().filter(|s| s.customer_id.is_some()).count() as u64;
        s.checkouts = sessions
            .iter()
            .filter(|s| {
                s.events
                    .last()
                    .is_some_and(|e| matches!(e.kind, EventKind::CheckoutStarted { .. }))
            })
            .count() as u64;
        s.events = events.len() as u64;
        let copies = |d: Delivery| batches.iter().filter(|b| b.delivery == d).count() as u64;
        s.resent = copies(Delivery::Resent);
        s.regrouped = copies(Delivery::Regrouped);
    }

    let answers: Vec<(usize, Batch, Posted)> = stream::iter(batches.into_iter().enumerate())
        .map(|(number, batch)| {
            let events = &events;
            async move {
                let body = batch_body(batch.events.iter().map(|&i| &events[i]));
                let posted = api.post_events(&body).await;
                record_answer(tally, &posted.value, posted.latency, posted.retries);
                (number, batch, posted.value)
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;

    let mut acknowledged = vec![false; events.len()];
    {
        let mut t = lock(tally);
        for (number, batch, posted) in answers {
            let what = format!(
                "event batch #{number} ({}, {} events)",
                delivery_name(batch.delivery),
                batch.events.len()
            );
            match posted {
                Posted::Accepted(n) => {
                    for &i in &batch.events {
                        acknowledged[i] = true;
                    }
                    // Its events are distinct: each counts in `accepted`, copies of earlier
                    // batches too (the API does not know them; the consumer drops them).
                    if n != batch.events.len() as u64 {
                        t.unexpected
                            .push(format!("{what} answered 202 with accepted {n}"));
                    }
                }
                Posted::Refused { status, body } => t
                    .unexpected
                    .push(format!("{what} refused with {status}: {body}")),
                Posted::Unreachable(err) => {
                    t.unexpected.push(format!("{what} got no answer: {err}"))
                }
            }
        }
        let s = &mut t.sessions;
        s.events_acknowledged = acknowledged.iter().filter(|a| **a).count() as u64;
        t.events = events
            .into_iter()
            .zip(acknowledged)
            .filter_map(|(event, ack)| ack.then_some(event))
            .collect();
    }

    let orders: Vec<_> = sessions.into_iter().filter_map(|s| s.order).collect();
    stream::iter(orders)
        .map(|order| {
            place_order(
                api,
                order,
                tally,
                follow_ups,
                plan.follow_up_timeout,
                Source::Session,
            )
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect::<Vec<()>>()
        .await;
}

fn record_answer(tally: &Shared, posted: &Posted, latency: Duration, retries: u32) {
    let mut t = lock(tally);
    let s = &mut t.sessions;
    s.batches += 1;
    s.latencies.push(latency);
    s.retries += u64::from(retries);
    let key = match posted {
        Posted::Accepted(_) => "202".to_owned(),
        Posted::Refused { status, .. } => status.to_string(),
        Posted::Unreachable(_) => "unreachable".to_owned(),
    };
    if !matches!(posted, Posted::Accepted(_)) {
        s.failed_batches += 1;
    }
    *s.by_status.entry(key).or_default() += 1;
}

fn delivery_name(delivery: Delivery) -> &'static str {
    match delivery {
        Delivery::First => "first delivery",
        Delivery::Resent => "resent",
        Delivery::Regrouped => "regrouped",
    }
}
