//! The sending side: bounded queue → adaptive batcher → sealed frame → publish,
//! plus the heartbeat and probe tickers (they share the broadcast sequence).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use super::Core;
use super::config::BatchConfig;
use super::stats::DropReason;
use crate::event::RawEvent;
use crate::identity::NodeId;
use crate::transport::{Backoff, Channel};
use crate::wire::{self, Body, Envelope, NodeMeta};

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

/// The outbox task's state.
pub(crate) struct Outbox {
    core: Arc<Core>,
    rx: mpsc::Receiver<Outgoing>,
    stop: watch::Receiver<bool>,
    batch: BatchConfig,
    timing: OutboxTiming,
    meta: NodeMeta,
    broadcast_seq: u64,
    directed_seq: HashMap<NodeId, u64>,
    nonce: u64,
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
            timing,
            meta,
            broadcast_seq: 0,
            directed_seq: HashMap::new(),
            nonce: 0,
        }
    }

    /// Runs until stopped; then flushes what is queued and sends `leave`.
    pub(crate) async fn run(mut self) {
        let mut heartbeat = tokio::time::interval(self.timing.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut probe = tokio::time::interval(self.timing.probe_interval);
        probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.stop.changed() => break,
                _ = heartbeat.tick() => self.send_heartbeat().await,
                _ = probe.tick() => self.send_probe().await,
                item = self.rx.recv() => match item {
                    Some(item) => self.send_batch(item).await,
                    None => break,
                },
            }
        }
        while let Ok(item) = self.rx.try_recv() {
            self.send_batch(item).await;
        }
        self.send_frame(&self.core.all.clone(), Body::Leave, false).await;
    }

    async fn send_heartbeat(&mut self) {
        let body = Body::Heartbeat(self.meta.clone());
        if self.send_frame(&self.core.all.clone(), body, false).await {
            self.core.stats.heartbeat_sent();
        }
    }

    async fn send_probe(&mut self) {
        self.nonce += 1;
        let nonce = self.nonce;
        self.core.probe.sent(nonce);
        let channel = self.core.mine.clone();
        self.send_frame(&channel, Body::Probe { nonce }, false).await;
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
            self.send_frame(&self.core.all.clone(), Body::Broadcast(chunk), true)
                .await;
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
                self.send_frame(&channel, body, true).await;
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

    /// Numbers, seals and publishes one frame; with `retry`, a temporary
    /// failure is retried with backoff for up to `retry-for`. Returns whether
    /// the frame went out.
    async fn send_frame(&mut self, channel: &Channel, body: Body, retry: bool) -> bool {
        let seq = match &body {
            Body::Broadcast(_) | Body::Heartbeat(_) | Body::Leave => {
                self.broadcast_seq += 1;
                self.broadcast_seq
            }
            Body::Directed { to, .. } => {
                let seq = self.directed_seq.entry(to.clone()).or_default();
                *seq += 1;
                *seq
            }
            Body::Probe { .. } => 0,
        };
        let events = match &body {
            Body::Broadcast(events) | Body::Directed { events, .. } => events.len(),
            _ => 0,
        };
        let envelope = Envelope {
            namespace: self.core.namespace.clone(),
            sender: self.core.me.clone(),
            incarnation: self.core.incarnation,
            seq,
            sent_at_ms: super::unix_ms(),
            body,
        };
        let frame = wire::encode(&envelope, self.core.secret.as_ref());
        let deadline = Instant::now() + self.timing.retry_for;
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(500));
        loop {
            let span = tracing::trace_span!("publish", %channel, seq, events);
            let published = self
                .core
                .transport
                .publish_dyn(channel, frame.clone())
                .instrument(span)
                .await;
            match published {
                Ok(()) => {
                    self.core.stats.sent(frame.len(), events);
                    return true;
                }
                Err(error) => {
                    let stopping = *self.stop.borrow();
                    if retry && error.is_temporary() && !stopping && Instant::now() < deadline {
                        tracing::debug!(%error, "publish failed; retrying");
                        let delay = backoff.next_delay().min(deadline - Instant::now());
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    if events > 0 {
                        tracing::warn!(%error, events, "publish failed; events dropped");
                    } else {
                        tracing::debug!(%error, "publish of a control frame failed");
                    }
                    self.core.stats.drop(DropReason::PublishFailed, events as u64);
                    return false;
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
