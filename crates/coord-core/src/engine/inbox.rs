//! The receiving side: transport streams → open (version, namespace, MAC,
//! replay window) → drop own → sequence check → membership or local fan-out.
//! It also ticks the failure detector, feeds it the transport's presence
//! changes where the backend has them, and re-makes subscriptions that ended
//! or went silent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, SelectAll};
use futures::{StreamExt, future};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::Core;
use super::fanout::Fanout;
use super::frames::{AcceptedFrame, FrameContent, FrameReport, RejectedFrame};
use super::incoming::{Delivery, Incoming, LagReason, Lagged};
use super::sequence::{Order, Sequences, StreamKind};
use super::stats::DropReason;
use crate::event::{EventDecodeError, RawEvent};
use crate::identity::NodeId;
use crate::membership::Membership;
use crate::transport::{Channel, Presence, PresenceStream, Received, Subscription};
use crate::wire::{self, Body, Envelope, FrameError, Stream};

/// Longest wait between attempts to heal silent subscriptions.
const MAX_HEAL_WAIT: Duration = Duration::from_secs(30);

/// Timing of the inbox task.
pub(crate) struct InboxTiming {
    /// How often the failure detector is evaluated.
    pub(crate) evaluate_every: Duration,
    /// Accepted distance between a sealed frame's send time and now.
    pub(crate) replay_window: Duration,
    /// Silence of the probes after which subscriptions are re-made.
    pub(crate) probe_silence: Duration,
    /// Transport `Lagged` markers this close together are one outage.
    pub(crate) lag_window: Duration,
}

/// Where the inbox hands what it received: events to the subscribers,
/// frame reports to the watchers.
pub(crate) struct Outlets {
    pub(crate) deliveries: Arc<Fanout<Incoming>>,
    pub(crate) frames: Arc<Fanout<FrameReport>>,
}

/// What one subscription yields: a frame or marker, or its end.
type Tagged = (usize, Option<Received>);

/// A subscription's stream, tagged with its channel's index and ending with
/// `None` so the inbox notices when it ends.
fn tagged(index: usize, subscription: Subscription) -> BoxStream<'static, Tagged> {
    subscription
        .map(move |received| (index, Some(received)))
        .chain(futures::stream::once(future::ready((index, None))))
        .boxed()
}

/// The inbox task's state.
pub(crate) struct Inbox {
    core: Arc<Core>,
    stop: watch::Receiver<bool>,
    channels: Vec<Channel>,
    streams: SelectAll<BoxStream<'static, Tagged>>,
    /// The transport's presence changes, when it has a liveness signal.
    presence: Option<PresenceStream>,
    membership: Membership,
    sequences: Sequences,
    deliveries: Arc<Fanout<Incoming>>,
    frames: Arc<Fanout<FrameReport>>,
    timing: InboxTiming,
    /// Until when further transport `Lagged` markers belong to the outage
    /// already reported, unless frames arrived since (then it is over).
    lag_reported_until: Option<Instant>,
    /// A silent episode is under way (its `Lagged` was emitted).
    silent: bool,
    next_heal: Instant,
    heal_wait: Duration,
}

impl Inbox {
    pub(crate) fn new(
        core: Arc<Core>,
        stop: watch::Receiver<bool>,
        subscriptions: Vec<(Channel, Subscription)>,
        presence: Option<PresenceStream>,
        membership: Membership,
        outlets: Outlets,
        timing: InboxTiming,
    ) -> Self {
        let Outlets { deliveries, frames } = outlets;
        let mut channels = Vec::new();
        let mut streams = SelectAll::new();
        for (index, (channel, subscription)) in subscriptions.into_iter().enumerate() {
            channels.push(channel);
            streams.push(tagged(index, subscription));
        }
        Inbox {
            core,
            stop,
            channels,
            streams,
            presence,
            membership,
            sequences: Sequences::default(),
            deliveries,
            frames,
            lag_reported_until: None,
            silent: false,
            next_heal: Instant::now() + timing.probe_silence,
            heal_wait: timing.probe_silence,
            timing,
        }
    }

    /// Runs until stopped.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.timing.evaluate_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = super::stopped(&mut self.stop) => break,
                _ = tick.tick() => {
                    self.membership.evaluate();
                    self.count_member_overflow();
                    self.heal_silent_subscriptions().await;
                }
                item = self.streams.next(), if !self.streams.is_empty() => match item {
                    Some((_, Some(Received::Frame(frame)))) => self.on_frame(frame),
                    Some((_, Some(Received::Lagged))) => self.transport_lagged(),
                    Some((index, None)) => self.subscription_ended(index).await,
                    None => {}
                },
                // After the frames: a heartbeat or leave received before a
                // presence change is applied first.
                change = next_presence(&mut self.presence), if self.presence.is_some() => match change {
                    Some(change) => {
                        self.membership.presence(change);
                        self.count_member_overflow();
                    }
                    None => self.presence = None,
                },
            }
        }
    }

    fn count_member_overflow(&mut self) {
        let overflow = self.membership.take_overflow();
        if overflow > 0 {
            self.core.stats.drop(DropReason::SubscriberOverflow, overflow);
        }
    }

    /// The transport may have lost frames: one `Lagged` per outage, however
    /// many subscriptions report it.
    fn transport_lagged(&mut self) {
        self.sequences.resync();
        let now = Instant::now();
        // Close to the last report, with no frame in between (a frame clears
        // it), the marker belongs to the outage already reported.
        if self.lag_reported_until.is_some_and(|until| now < until) {
            return;
        }
        self.lag_reported_until = Some(now + self.timing.lag_window);
        self.lagged(None, None, LagReason::Transport);
    }

    fn lagged(&self, from: Option<NodeId>, missed: Option<u64>, reason: LagReason) {
        tracing::debug!(node = %self.core.me, ?from, ?missed, ?reason, "lagged");
        self.core.stats.lagged();
        let overflow = self
            .deliveries
            .send_all(&[Incoming::Lagged(Lagged { from, missed, reason })]);
        self.core.stats.drop(DropReason::SubscriberOverflow, overflow);
    }

    /// Subscribes to `channel` again, giving up after the probe silence or
    /// when the node stops.
    async fn resubscribe(&mut self, channel: &Channel) -> Option<Subscription> {
        let attempt = tokio::time::timeout(self.timing.probe_silence, self.core.transport.subscribe_dyn(channel));
        tokio::select! {
            _ = super::stopped(&mut self.stop) => None,
            result = attempt => match result {
                Ok(Ok(subscription)) => Some(subscription),
                Ok(Err(error)) => {
                    tracing::warn!(node = %self.core.me, %channel, %error, "re-subscribing failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(node = %self.core.me, %channel, "re-subscribing timed out");
                    None
                }
            },
        }
    }

    /// A subscription stream ended although the node runs: frames were lost
    /// and the subscription is made again (if that fails, the silence it
    /// causes is healed later).
    async fn subscription_ended(&mut self, index: usize) {
        if *self.stop.borrow() {
            return;
        }
        let channel = self.channels[index].clone();
        tracing::warn!(node = %self.core.me, %channel, "subscription ended; re-subscribing");
        self.transport_lagged();
        if let Some(subscription) = self.resubscribe(&channel).await {
            self.streams.push(tagged(index, subscription));
            self.core.stats.resubscribed();
        }
    }

    /// Re-makes every subscription when frames stopped coming back although
    /// the transport says it is connected (a silent subscription), with a
    /// growing wait between attempts and one `Lagged` per silent episode.
    async fn heal_silent_subscriptions(&mut self) {
        if self.core.probe.silence() < self.timing.probe_silence {
            self.silent = false;
            self.heal_wait = self.timing.probe_silence;
            return;
        }
        let now = Instant::now();
        if now < self.next_heal || !self.core.transport.health_dyn().connected {
            return;
        }
        self.next_heal = now + self.heal_wait;
        self.heal_wait = (self.heal_wait * 2).min(MAX_HEAL_WAIT);
        tracing::warn!(node = %self.core.me, "frames stopped coming back; re-making subscriptions");
        let mut fresh = SelectAll::new();
        for (index, channel) in self.channels.clone().iter().enumerate() {
            match self.resubscribe(channel).await {
                Some(subscription) => fresh.push(tagged(index, subscription)),
                None => return,
            }
        }
        self.streams = fresh;
        self.sequences.resync();
        self.core.stats.resubscribed();
        if !std::mem::replace(&mut self.silent, true) {
            self.lagged(None, None, LagReason::Resubscribed);
        }
    }

    fn on_frame(&mut self, frame: Bytes) {
        self.lag_reported_until = None;
        let core = self.core.clone();
        let stats = &core.stats;
        let bytes = frame.len();
        stats.received(bytes);
        let envelope = match wire::decode_shared(&frame, self.core.secret.as_ref()) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::debug!(node = %self.core.me, %error, "frame dropped");
                let detail = self.frames.is_watched().then(|| error.to_string());
                return self.reject(frame_drop_reason(error), None, bytes, detail);
            }
        };
        let span = tracing::trace_span!("receive", sender = %envelope.sender, seq = envelope.seq);
        let _entered = span.enter();
        let named = Some(&envelope);
        if envelope.namespace != self.core.namespace {
            return self.reject(DropReason::ForeignNamespace, named, bytes, None);
        }
        if envelope.sender == self.core.me {
            return self.own_frame(envelope);
        }
        if self.core.secret.is_some() && !self.within_window(envelope.sent_at_ms) {
            return self.reject(DropReason::OutsideWindow, named, bytes, None);
        }
        let stream = match envelope.body.stream() {
            Stream::Probe => return,
            Stream::Directed(to) if *to != self.core.me => {
                return self.reject(DropReason::NotForMe, named, bytes, None);
            }
            Stream::Directed(_) => StreamKind::Directed,
            Stream::Broadcast => StreamKind::Broadcast,
            Stream::Membership => StreamKind::Membership,
        };
        let mut order = self
            .sequences
            .check(&envelope.sender, envelope.incarnation, stream, envelope.seq);
        if order == Order::Stale && self.membership.is_gone(&envelope.sender) {
            // The newer incarnation failed or left: this older one is a
            // restart whose clock went back, not a ghost.
            self.sequences.restart(&envelope.sender, envelope.incarnation);
            order = self
                .sequences
                .check(&envelope.sender, envelope.incarnation, stream, envelope.seq);
        }
        match order {
            Order::Next => {}
            Order::Gap(_) if stream == StreamKind::Membership => {}
            Order::Gap(missed) => self.lagged(Some(envelope.sender.clone()), Some(missed), LagReason::Gap),
            Order::Duplicate => return self.reject(DropReason::Duplicate, named, bytes, None),
            Order::Stale => {
                if matches!(envelope.body, Body::Heartbeat(_)) {
                    self.membership
                        .stale_heartbeat(&envelope.sender, envelope.incarnation, envelope.seq);
                    self.count_member_overflow();
                }
                return self.reject(DropReason::StaleIncarnation, named, bytes, None);
            }
        }
        let Envelope {
            sender,
            incarnation,
            seq,
            body,
            ..
        } = envelope;
        let watched = self.frames.is_watched();
        let content = match body {
            Body::Heartbeat(meta) => {
                stats.heartbeat_received();
                let content = watched.then(|| FrameContent::Heartbeat(meta.clone()));
                self.membership.heartbeat(&sender, incarnation, seq, meta);
                self.count_member_overflow();
                content
            }
            Body::Leave => {
                self.membership.leave(&sender, incarnation);
                self.count_member_overflow();
                Some(FrameContent::Leave)
            }
            Body::Broadcast(events) => self.deliver(&sender, false, events, watched),
            Body::Directed { events, .. } => self.deliver(&sender, true, events, watched),
            Body::Probe { .. } => None,
        };
        if watched && let Some(content) = content {
            self.report(FrameReport::Accepted(AcceptedFrame {
                sender,
                incarnation,
                seq,
                bytes,
                content,
            }));
        }
    }

    /// Counts a dropped frame and reports it to the watchers, if any.
    fn reject(&self, reason: DropReason, envelope: Option<&Envelope>, bytes: usize, detail: Option<String>) {
        self.core.stats.drop(reason, 1);
        if self.frames.is_watched() {
            self.report(FrameReport::Rejected(RejectedFrame {
                sender: envelope.map(|envelope| envelope.sender.clone()),
                seq: envelope.map(|envelope| envelope.seq),
                bytes,
                reason,
                detail,
            }));
        }
    }

    /// Hands a frame report to the watchers; a full watcher misses it, as a
    /// slow subscriber does (never counted as a lost delivery).
    fn report(&self, report: FrameReport) {
        self.frames.send_all(&[report]);
    }

    /// A frame carrying our node id: our own (a probe coming back, or a
    /// broadcast echoed by the transport), or another live process using it.
    fn own_frame(&mut self, envelope: Envelope) {
        if envelope.incarnation == self.core.incarnation {
            match envelope.body {
                Body::Probe { nonce } => self.core.probe.returned(nonce),
                Body::Heartbeat(_) => self.core.probe.echoed(),
                _ => {}
            }
        } else if matches!(envelope.body, Body::Heartbeat(_)) {
            self.membership.conflict_with_me(envelope.incarnation, envelope.seq);
            self.count_member_overflow();
        }
    }

    fn within_window(&self, sent_at_ms: u64) -> bool {
        let window = self.timing.replay_window.as_millis() as u64;
        super::unix_ms().abs_diff(sent_at_ms) <= window
    }

    /// Decodes and fans out the events of a frame; returns what the frame
    /// carried when somebody watches frames (`watched`).
    fn deliver(&self, from: &NodeId, directed: bool, events: Vec<RawEvent>, watched: bool) -> Option<FrameContent> {
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
        watched.then(|| FrameContent::Events {
            directed,
            skipped: events.len() - items.len(),
            events: items
                .into_iter()
                .filter_map(|item| match item {
                    Incoming::Event(delivery) => Some(delivery.event),
                    Incoming::Lagged(_) => None,
                })
                .collect(),
        })
    }
}

/// The next presence change; pending forever without a presence stream.
async fn next_presence(presence: &mut Option<PresenceStream>) -> Option<Presence> {
    match presence {
        Some(stream) => stream.next().await,
        None => future::pending().await,
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
