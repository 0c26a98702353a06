//! The batch handler: decode, find the listeners, push one frame per socket.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;
use futures::stream::{self, StreamExt};
use orders_aws::batch::{DeadLetters, RetryPoint};
use orders_aws::deadline::Deadline;
use orders_aws::metrics::{format_counts, take_request_counts};
use orders_aws::telemetry::metric;
use orders_core::live::{Audience, Push, Topic, pushes_of};
use orders_core::ports::{Clock, DeadLetterQueue, Delivery, LiveConnections, Pusher};
use orders_core::{Decoded, EventEnvelope, EventId, OrderError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{info, warn};

/// Pushes in flight at once: each is one small HTTPS request to API Gateway.
const CONCURRENT_PUSHES: usize = 16;
/// API Gateway meters WebSocket messages in 32 KB steps: a frame up to that is one message.
pub const FRAME_BYTES: usize = 32 * 1024;

pub struct Notifier<L, P, D> {
    pub connections: L,
    pub pusher: P,
    pub dead_letters: D,
    pub clock: Arc<dyn Clock>,
    pub function_name: String,
}

/// Who listens to what, for this batch.
type Listeners = BTreeMap<(Audience, Topic), Vec<String>>;
/// One audience's sockets listening to one topic.
type ListenersOf = ((Audience, Topic), Vec<String>);

fn near_deadline() -> OrderError {
    OrderError::Unavailable("the invocation's deadline is near; not started".into())
}

impl<L: LiveConnections, P: Pusher, D: DeadLetterQueue> Notifier<L, P, D> {
    /// A batch with no deadline (tests).
    pub async fn handle(&self, event: KinesisEvent) -> KinesisEventResponse {
        self.handle_until(event, Deadline::none()).await
    }

    pub async fn handle_until(
        &self,
        event: KinesisEvent,
        deadline: Deadline,
    ) -> KinesisEventResponse {
        let mut retry = RetryPoint::default();
        let records = event.records;
        let letters = DeadLetters {
            queue: &self.dead_letters,
            clock: self.clock.as_ref(),
            function: &self.function_name,
        };

        // 1. Decode; dead-letter what can never be read. A producer's duplicate inside the
        //    batch is pushed once.
        let mut events: Vec<(String, EventEnvelope)> = Vec::new();
        let mut seen: BTreeSet<EventId> = BTreeSet::new();
        for record in &records {
            let sequence = &record.kinesis.sequence_number;
            match EventEnvelope::decode(&record.kinesis.data) {
                Ok(Decoded::Event(envelope)) => {
                    if seen.insert(envelope.event_id) {
                        events.push((sequence.clone(), *envelope));
                    }
                }
                Ok(Decoded::UnknownType(_)) => {}
                Err(err) => {
                    if let Err(e) = letters.kinesis(record, err.code(), err.to_string()).await {
                        warn!(error = %e, %sequence, "dead-lettering failed; will retry");
                        retry.at(sequence);
                    }
                }
            }
        }

        // 2. Who listens: staff once, each customer of the batch once.
        let pushes: Vec<Push> = events.iter().flat_map(|(_, e)| pushes_of(e)).collect();
        let mut wanted: BTreeSet<(Audience, Topic)> = BTreeSet::new();
        for push in &pushes {
            for audience in &push.audiences {
                if audience.may_receive(push.topic) {
                    wanted.insert((audience.clone(), push.topic));
                }
            }
        }
        let listeners = match self.listeners(wanted, deadline).await {
            Ok(listeners) => listeners,
            Err(err) => {
                warn!(error = %err, "reading the listeners failed; will retry");
                if let Some((sequence, _)) = events.first() {
                    retry.at(sequence);
                }
                return self.finish(records.len(), retry, 0, 0);
            }
        };

        // 3. One frame per socket for the whole batch (API Gateway bills per message, in
        //    32 KB steps): a socket costs at most one push per batch whatever the traffic.
        let mut frames: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for push in &pushes {
            for audience in &push.audiences {
                for id in listeners
                    .get(&(audience.clone(), push.topic))
                    .into_iter()
                    .flatten()
                {
                    frames.entry(id.clone()).or_default().push(&push.body);
                }
            }
        }
        let mut sent = 0usize;
        let mut gone: BTreeSet<String> = BTreeSet::new();
        if let Some((first, _)) = events.first().filter(|_| !frames.is_empty()) {
            if !deadline.allows_more() {
                warn!(error = %near_deadline(), "stopping; will retry");
                retry.at(first);
            } else {
                let (pushed, closed, failed) = self.push_frames(&frames).await;
                sent = pushed;
                gone = closed;
                // Everything again: sockets that got theirs get it twice and drop it by
                // eventId; simpler and as cheap as tracking who got what.
                if let Some(err) = failed {
                    warn!(error = %err, "a push failed; will retry the batch");
                    retry.at(first);
                }
            }
        }

        // 4. Forget closed sockets (best effort: the table's TTL removes what is left).
        for id in &gone {
            if let Err(err) = self.connections.close(id).await {
                warn!(error = %err, "forgetting a closed socket failed");
            }
        }
        metrics::counter!(metric::CONNECTIONS_GONE).increment(gone.len() as u64);
        self.finish(records.len(), retry, sent, gone.len())
    }

    fn finish(
        &self,
        records: usize,
        retry: RetryPoint,
        sent: usize,
        gone: usize,
    ) -> KinesisEventResponse {
        info!(
            records,
            pushed = sent,
            gone,
            retry_from = retry.sequence().unwrap_or(""),
            aws_requests = %format_counts(&take_request_counts()),
            "batch pushed"
        );
        retry.kinesis_response(records)
    }

    async fn listeners(
        &self,
        wanted: BTreeSet<(Audience, Topic)>,
        deadline: Deadline,
    ) -> Result<Listeners, OrderError> {
        let found: Vec<Result<ListenersOf, OrderError>> = stream::iter(wanted)
            .map(|(audience, topic)| async move {
                if !deadline.allows_more() {
                    return Err(near_deadline());
                }
                let ids = self.connections.listening(&audience, topic).await?;
                Ok(((audience, topic), ids))
            })
            .buffer_unordered(CONCURRENT_PUSHES)
            .collect()
            .await;
        found.into_iter().collect()
    }

    /// Sends each socket its messages (several per frame, frames up to
    /// [`FRAME_BYTES`]): how many frames went out, the sockets found closed, and a failure
    /// that may pass if there was one. One that cannot (API Gateway refusing the message)
    /// is logged and that socket skipped, so the shard moves on.
    async fn push_frames(
        &self,
        frames: &BTreeMap<String, Vec<&str>>,
    ) -> (usize, BTreeSet<String>, Option<OrderError>) {
        let results: Vec<(String, Result<usize, OrderError>, bool)> = stream::iter(frames)
            .map(|(id, bodies)| async move {
                let mut sent = 0;
                for frame in frames_of(bodies) {
                    match self.pusher.push(id, &frame).await {
                        Ok(Delivery::Sent) => sent += 1,
                        Ok(Delivery::Gone) => return (id.clone(), Ok(sent), true),
                        Err(err) => return (id.clone(), Err(err), false),
                    }
                }
                (id.clone(), Ok(sent), false)
            })
            .buffer_unordered(CONCURRENT_PUSHES)
            .collect()
            .await;
        let mut sent = 0;
        let mut closed = BTreeSet::new();
        let mut failure = None;
        for (id, result, gone) in results {
            match result {
                Ok(n) => sent += n,
                Err(err) if err.is_retryable() => failure = Some(err),
                Err(err) => {
                    warn!(error = %err, detail = ?err, "push refused; skipping this socket")
                }
            }
            if gone {
                closed.insert(id);
            }
        }
        metrics::counter!(metric::PUSHES).increment(sent as u64);
        (sent, closed, failure)
    }
}

/// Messages in frames: one alone as itself, several as `{"type":"batch","messages":[…]}`,
/// each frame at most [`FRAME_BYTES`] (a bigger message goes alone).
pub fn frames_of(bodies: &[&str]) -> Vec<String> {
    let mut frames = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut size = 0;
    let flush = |current: &mut Vec<&str>, frames: &mut Vec<String>| match current.as_slice() {
        [] => {}
        [one] => frames.push((*one).to_owned()),
        many => frames.push(format!(
            "{{\"type\":\"batch\",\"messages\":[{}]}}",
            many.join(",")
        )),
    };
    for body in bodies {
        if !current.is_empty() && size + body.len() + 1 > FRAME_BYTES - 40 {
            flush(&mut current, &mut frames);
            current.clear();
            size = 0;
        }
        size += body.len() + 1;
        current.push(body);
    }
    flush(&mut current, &mut frames);
    frames
}
