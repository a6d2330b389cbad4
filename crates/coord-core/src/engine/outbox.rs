//! The sending side: bounded queue → adaptive batcher → sealed frame → publish,
//! plus the heartbeat and probe tickers, which keep ticking while a data frame
//! waits to be retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::Instrument;

use super::Core;
use super::config::BatchConfig;
use super::stats::DropReason;
use crate::error::Error;
use crate::event::RawEvent;
use crate::identity::NodeId;
use crate::transport::{Backoff, Channel};
use crate::wire::{self, Body, Envelope, NodeMeta, Stream};

/// Bytes a frame can take beyond its events: prefix, MAC, the envelope's
/// names and numbers at their largest.
pub(crate) const FRAME_OVERHEAD: usize = 4 + wire::MAC_LEN + 3 * (crate::identity::MAX_NAME_LEN + 1) + 3 * 10 + 1 + 5;

/// One queued event and where it goes.
pub(crate) enum Outgoing {
    /// To every node.
    Broadcast(RawEvent),
    /// To one node.
    Directed(NodeId, RawEvent),
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Outgoing::Broadcast(e) | Outgoing::Directed(_, e) => e.encoded_len(),
        }
    }
}

/// Timing of the outbox task.
pub(crate) struct OutboxTiming {
    pub(crate) heartbeat_interval: Duration,
    pub(crate) probe_interval: Duration,
    pub(crate) retry_for: Duration,
}

/// The next sequence number of each of this node's streams.
#[derive(Default)]
struct Counters {
    broadcast: u64,
    membership: u64,
    directed: HashMap<NodeId, u64>,
}

impl Counters {
    fn next(&mut self, stream: Stream<'_>) -> u64 {
        let counter = match stream {
            Stream::Broadcast => &mut self.broadcast,
            Stream::Membership => &mut self.membership,
            Stream::Directed(to) => self.directed.entry(to.clone()).or_default(),
            Stream::Probe => return 0,
        };
        *counter += 1;
        *counter
    }
}

/// The outbox task's state.
pub(crate) struct Outbox {
    core: Arc<Core>,
    rx: mpsc::Receiver<Outgoing>,
    stop: watch::Receiver<bool>,
    batch: BatchConfig,
    retry_for: Duration,
    heartbeat: Interval,
    probe: Interval,
    meta: NodeMeta,
    counters: Counters,
    nonce: u64,
    /// Once stopping: when the final flush gives up retrying.
    flush_until: Option<Instant>,
}

fn ticker(period: Duration) -> Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

impl Outbox {
    pub(crate) fn new(
        core: Arc<Core>,
        rx: mpsc::Receiver<Outgoing>,
        stop: watch::Receiver<bool>,
        mut batch: BatchConfig,
        timing: OutboxTiming,
        meta: NodeMeta,
    ) -> Self {
        let max_frame = core.capabilities.max_payload.saturating_sub(FRAME_OVERHEAD);
        batch.max_bytes = batch.max_bytes.min(max_frame).max(1);
        Outbox {
            core,
            rx,
            stop,
            batch,
            retry_for: timing.retry_for,
            heartbeat: ticker(timing.heartbeat_interval),
            probe: ticker(timing.probe_interval),
            meta,
            counters: Counters::default(),
            nonce: 0,
            flush_until: None,
        }
    }

    /// Runs until stopped; then flushes what is queued and sends `leave`.
    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                _ = super::stopped(&mut self.stop) => break,
                _ = self.heartbeat.tick() => self.send_heartbeat().await,
                _ = self.probe.tick() => self.send_probe().await,
                item = self.rx.recv() => match item {
                    Some(item) => self.send_batch(item).await,
                    None => break,
                },
            }
        }
        // Refuse new events, then send every one accepted before, retrying
        // temporary failures for at most `retry-for` in all.
        self.flush_until.get_or_insert(Instant::now() + self.retry_for);
        self.rx.close();
        while let Some(item) = self.rx.recv().await {
            self.send_batch(item).await;
        }
        let all = self.core.all.clone();
        self.send_control(&all, Body::Leave).await;
    }

    async fn send_heartbeat(&mut self) {
        let all = self.core.all.clone();
        if self.send_control(&all, Body::Heartbeat(self.meta.clone())).await {
            self.core.stats.heartbeat_sent();
        }
    }

    async fn send_probe(&mut self) {
        self.nonce += 1;
        let nonce = self.nonce;
        self.core.probe.sent(nonce);
        let mine = self.core.mine.clone();
        self.send_control(&mine, Body::Probe { nonce }).await;
    }

    /// Sends `first` and everything that piled up behind it, in as few frames
    /// as the batch bounds allow.
    async fn send_batch(&mut self, first: Outgoing) {
        let mut bytes = first.len();
        let mut batch = vec![first];
        self.fill(&mut batch, &mut bytes);
        if !self.batch.linger.is_zero() {
            let deadline = Instant::now() + self.batch.linger;
            while !self.full(&batch, bytes) {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(item)) => {
                        bytes += item.len();
                        batch.push(item);
                        self.fill(&mut batch, &mut bytes);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let mut broadcast = Vec::new();
        let mut directed: Vec<(NodeId, Vec<RawEvent>)> = Vec::new();
        for item in batch {
            match item {
                Outgoing::Broadcast(event) => broadcast.push(event),
                Outgoing::Directed(to, event) => match directed.iter_mut().find(|(t, _)| *t == to) {
                    Some((_, events)) => events.push(event),
                    None => directed.push((to, vec![event])),
                },
            }
        }
        for chunk in chunks(broadcast, self.batch.max_bytes) {
            let all = self.core.all.clone();
            self.send_events(&all, Body::Broadcast(chunk)).await;
        }
        for (to, events) in directed {
            let channel = if self.core.capabilities.per_node_channels {
                Channel::node(&self.core.namespace, &to)
            } else {
                self.core.all.clone()
            };
            for chunk in chunks(events, self.batch.max_bytes) {
                let body = Body::Directed {
                    to: to.clone(),
                    events: chunk,
                };
                self.send_events(&channel, body).await;
            }
        }
    }

    fn full(&self, batch: &[Outgoing], bytes: usize) -> bool {
        batch.len() >= self.batch.max_events || bytes >= self.batch.max_bytes
    }

    /// Takes what is already queued, up to the batch bounds.
    fn fill(&mut self, batch: &mut Vec<Outgoing>, bytes: &mut usize) {
        while !self.full(batch, *bytes) {
            match self.rx.try_recv() {
                Ok(item) => {
                    *bytes += item.len();
                    batch.push(item);
                }
                Err(_) => break,
            }
        }
    }

    /// Numbers and seals a frame in its stream.
    fn seal(&mut self, body: Body) -> Bytes {
        let seq = self.counters.next(body.stream());
        let envelope = Envelope {
            namespace: self.core.namespace.clone(),
            sender: self.core.me.clone(),
            incarnation: self.core.incarnation,
            seq,
            sent_at_ms: super::unix_ms(),
            body,
        };
        wire::encode(&envelope, self.core.secret.as_ref())
    }

    async fn publish(&self, channel: &Channel, frame: &Bytes, events: usize) -> Result<(), Error> {
        let span = tracing::trace_span!("publish", %channel, bytes = frame.len(), events);
        self.core
            .transport
            .publish_dyn(channel, frame.clone())
            .instrument(span)
            .await?;
        self.core.stats.sent(frame.len(), events);
        Ok(())
    }

    /// Sends a heartbeat, leave or probe once: a lost one is replaced by the
    /// next. Returns whether it went out.
    async fn send_control(&mut self, channel: &Channel, body: Body) -> bool {
        let frame = self.seal(body);
        match self.publish(channel, &frame, 0).await {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "publish of a control frame failed");
                false
            }
        }
    }

    /// Sends a frame of events; a temporary failure is retried with backoff
    /// for up to `retry-for` (while heartbeats and probes keep going out), and
    /// once stopping until the flush's own `retry-for` runs out. What still
    /// fails is dropped and counted.
    async fn send_events(&mut self, channel: &Channel, body: Body) {
        let events = match &body {
            Body::Broadcast(events) | Body::Directed { events, .. } => events.len(),
            _ => 0,
        };
        let frame = self.seal(body);
        let deadline = Instant::now() + self.retry_for;
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(500));
        loop {
            let error = match self.publish(channel, &frame, events).await {
                Ok(()) => return,
                Err(error) => error,
            };
            if self.flush_until.is_none() && *self.stop.borrow() {
                self.flush_until = Some(Instant::now() + self.retry_for);
            }
            let give_up_at = self.flush_until.map_or(deadline, |until| until.min(deadline));
            if !error.is_temporary() || Instant::now() >= give_up_at {
                tracing::warn!(%error, events, "publish failed; events dropped");
                self.core.stats.drop(DropReason::PublishFailed, events as u64);
                return;
            }
            tracing::debug!(%error, "publish failed; retrying");
            let wake = tokio::time::sleep(backoff.next_delay().min(give_up_at - Instant::now()));
            if self.flush_until.is_some() {
                // Shutting down: no more heartbeats or probes, only the flush.
                wake.await;
                continue;
            }
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut wake => break,
                    _ = super::stopped(&mut self.stop) => break,
                    _ = self.heartbeat.tick() => self.send_heartbeat().await,
                    _ = self.probe.tick() => self.send_probe().await,
                }
            }
        }
    }
}

/// Splits `events` into runs of at most `max_bytes` (an event larger than
/// that travels alone).
fn chunks(events: Vec<RawEvent>, max_bytes: usize) -> Vec<Vec<RawEvent>> {
    let mut out: Vec<Vec<RawEvent>> = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for event in events {
        let len = event.encoded_len();
        if !current.is_empty() && size + len > max_bytes {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push(event);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn chunks_respect_the_byte_bound() {
        let event = |n: usize| RawEvent {
            tag: 9,
            body: Bytes::from(vec![0; n]),
        };
        let split = chunks(vec![event(10), event(10), event(10), event(100)], 25);
        let sizes: Vec<usize> = split.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1, 1]);
        assert!(chunks(Vec::new(), 25).is_empty());
    }
}
