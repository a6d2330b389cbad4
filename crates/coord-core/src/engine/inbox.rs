//! The receiving side: transport streams → open (version, namespace, MAC,
//! replay window) → drop own → sequence check → membership or local fan-out.
//! It also ticks the failure detector and re-makes subscriptions that went
//! silent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::SelectAll;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::Core;
use super::fanout::Fanout;
use super::incoming::{Delivery, Incoming, LagReason, Lagged};
use super::sequence::{Order, Sequences, StreamKind};
use super::stats::DropReason;
use crate::event::{EventDecodeError, RawEvent};
use crate::identity::NodeId;
use crate::membership::Membership;
use crate::transport::{Channel, Received, Subscription};
use crate::wire::{self, Body, Envelope, FrameError};

/// Timing of the inbox task.
pub(crate) struct InboxTiming {
    /// How often the failure detector is evaluated.
    pub(crate) evaluate_every: Duration,
    /// Accepted distance between a sealed frame's send time and now.
    pub(crate) replay_window: Duration,
    /// Probe silence after which subscriptions are re-made.
    pub(crate) probe_silence: Duration,
}

/// The inbox task's state.
pub(crate) struct Inbox {
    core: Arc<Core>,
    stop: watch::Receiver<bool>,
    channels: Vec<Channel>,
    streams: SelectAll<Subscription>,
    membership: Membership,
    sequences: Sequences,
    deliveries: Arc<Fanout<Incoming>>,
    timing: InboxTiming,
    /// A transport `Lagged` arrived and is not yet reported: markers from
    /// several subscriptions for one outage become one notification.
    transport_lag: bool,
}

impl Inbox {
    pub(crate) fn new(
        core: Arc<Core>,
        stop: watch::Receiver<bool>,
        subscriptions: Vec<(Channel, Subscription)>,
        membership: Membership,
        deliveries: Arc<Fanout<Incoming>>,
        timing: InboxTiming,
    ) -> Self {
        let (channels, streams): (Vec<_>, Vec<_>) = subscriptions.into_iter().unzip();
        Inbox {
            core,
            stop,
            channels,
            streams: streams.into_iter().collect(),
            membership,
            sequences: Sequences::default(),
            deliveries,
            timing,
            transport_lag: false,
        }
    }

    /// Runs until stopped.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.timing.evaluate_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.stop.changed() => break,
                _ = tick.tick() => {
                    self.report_transport_lag();
                    self.membership.evaluate();
                    self.heal_silent_subscriptions().await;
                }
                item = self.streams.next(), if !self.streams.is_empty() => match item {
                    Some(Received::Frame(frame)) => {
                        self.report_transport_lag();
                        self.on_frame(frame);
                    }
                    Some(Received::Lagged) => {
                        self.transport_lag = true;
                        self.sequences.reset();
                    }
                    None => {}
                },
            }
        }
    }

    fn report_transport_lag(&mut self) {
        if std::mem::take(&mut self.transport_lag) {
            self.lagged(None, None, LagReason::Transport);
        }
    }

    fn lagged(&self, from: Option<NodeId>, missed: Option<u64>, reason: LagReason) {
        tracing::debug!(node = %self.core.me, ?from, ?missed, ?reason, "lagged");
        self.core.stats.lagged();
        let overflow = self
            .deliveries
            .send_all(&[Incoming::Lagged(Lagged { from, missed, reason })]);
        self.core.stats.drop(DropReason::SubscriberOverflow, overflow);
    }

    /// Re-makes the subscriptions when probes stopped coming back although the
    /// transport says it is connected (a silent subscription).
    async fn heal_silent_subscriptions(&mut self) {
        if self.core.probe.age() < self.timing.probe_silence || !self.core.transport.health_dyn().connected {
            return;
        }
        tracing::warn!(node = %self.core.me, "probes stopped coming back; re-making subscriptions");
        self.core.probe.reset();
        let mut fresh = SelectAll::new();
        for channel in &self.channels {
            match self.core.transport.subscribe_dyn(channel).await {
                Ok(subscription) => fresh.push(subscription),
                Err(error) => {
                    tracing::warn!(node = %self.core.me, %error, "re-subscribing failed; keeping the old subscriptions");
                    return;
                }
            }
        }
        self.streams = fresh;
        self.sequences.reset();
        self.core.stats.resubscribed();
        self.lagged(None, None, LagReason::Resubscribed);
    }

    fn on_frame(&mut self, frame: Bytes) {
        let stats = &self.core.stats;
        stats.received(frame.len());
        let envelope = match wire::decode(&frame, self.core.secret.as_ref()) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::debug!(node = %self.core.me, %error, "frame dropped");
                stats.drop(frame_drop_reason(error), 1);
                return;
            }
        };
        let span = tracing::trace_span!("receive", sender = %envelope.sender, seq = envelope.seq);
        let _entered = span.enter();
        if envelope.namespace != self.core.namespace {
            return stats.drop(DropReason::ForeignNamespace, 1);
        }
        if envelope.sender == self.core.me {
            return self.own_frame(envelope);
        }
        if self.core.secret.is_some() && !self.within_window(envelope.sent_at_ms) {
            return stats.drop(DropReason::OutsideWindow, 1);
        }
        let stream = match &envelope.body {
            Body::Probe { .. } => return,
            Body::Directed { to, .. } if *to != self.core.me => return stats.drop(DropReason::NotForMe, 1),
            Body::Directed { .. } => StreamKind::Directed,
            Body::Broadcast(_) | Body::Heartbeat(_) | Body::Leave => StreamKind::Broadcast,
        };
        let Envelope {
            sender,
            incarnation,
            seq,
            body,
            ..
        } = envelope;
        match self.sequences.check(&sender, incarnation, stream, seq) {
            Order::Next => {}
            Order::Gap(missed) => self.lagged(Some(sender.clone()), Some(missed), LagReason::Gap),
            Order::Duplicate => return stats.drop(DropReason::Duplicate, 1),
            Order::Stale => {
                if matches!(body, Body::Heartbeat(_)) {
                    self.membership.stale_heartbeat(&sender, incarnation, seq);
                }
                return stats.drop(DropReason::StaleIncarnation, 1);
            }
        }
        match body {
            Body::Heartbeat(meta) => {
                stats.heartbeat_received();
                self.membership.heartbeat(&sender, incarnation, seq, meta);
            }
            Body::Leave => self.membership.leave(&sender, incarnation),
            Body::Broadcast(events) => self.deliver(sender, false, events),
            Body::Directed { events, .. } => self.deliver(sender, true, events),
            Body::Probe { .. } => {}
        }
    }

    /// A frame carrying our node id: our own (a probe coming back, or a
    /// broadcast echoed by the transport), or another live process using it.
    fn own_frame(&mut self, envelope: Envelope) {
        if envelope.incarnation == self.core.incarnation {
            if let Body::Probe { nonce } = envelope.body {
                self.core.probe.returned(nonce);
            }
        } else if matches!(envelope.body, Body::Heartbeat(_)) {
            self.membership.conflict_with_me(envelope.incarnation);
        }
    }

    fn within_window(&self, sent_at_ms: u64) -> bool {
        let window = self.timing.replay_window.as_millis() as u64;
        super::unix_ms().abs_diff(sent_at_ms) <= window
    }

    fn deliver(&self, from: NodeId, directed: bool, events: Vec<RawEvent>) {
        let stats = &self.core.stats;
        let mut items = Vec::with_capacity(events.len());
        for raw in &events {
            match raw.decode() {
                Ok(event) => items.push(Incoming::Event(Delivery {
                    from: from.clone(),
                    directed,
                    event,
                })),
                Err(error) => {
                    tracing::debug!(node = %self.core.me, %from, ?error, "event skipped");
                    let reason = match error {
                        EventDecodeError::UnknownTag(_) => DropReason::UnknownEvent,
                        EventDecodeError::BadBody(_) => DropReason::BadEvent,
                    };
                    stats.drop(reason, 1);
                }
            }
        }
        stats.events_received(items.len());
        let overflow = self.deliveries.send_all(&items);
        stats.drop(DropReason::SubscriberOverflow, overflow);
    }
}

fn frame_drop_reason(error: FrameError) -> DropReason {
    match error {
        FrameError::NotAFrame => DropReason::NotAFrame,
        FrameError::UnknownVersion(_) => DropReason::UnknownVersion,
        FrameError::UnknownFlags(_) | FrameError::Malformed => DropReason::Malformed,
        FrameError::Unsigned => DropReason::Unsigned,
        FrameError::BadMac => DropReason::BadMac,
    }
}
