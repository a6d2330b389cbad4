//! How events, membership changes and frames are printed: one human line,
//! or one JSON object per line with `--json`.

use std::time::{SystemTime, UNIX_EPOCH};

use coord::{
    AcceptedFrame, CacheKind, DataTypes, Event, FrameContent, FrameReport, Incoming, Invalidation, MemberEvent,
    QueueEvent, RejectedFrame, Reload,
};
use serde_json::{Value, json};

/// The data type names, in bit order, as `--types` spells them.
pub(crate) const DATA_TYPES: [(&str, DataTypes); 13] = [
    ("email", DataTypes::EMAIL),
    ("mailbox", DataTypes::MAILBOX),
    ("thread", DataTypes::THREAD),
    ("identity", DataTypes::IDENTITY),
    ("email-submission", DataTypes::EMAIL_SUBMISSION),
    ("vacation-response", DataTypes::VACATION_RESPONSE),
    ("sieve-script", DataTypes::SIEVE_SCRIPT),
    ("calendar", DataTypes::CALENDAR),
    ("calendar-event", DataTypes::CALENDAR_EVENT),
    ("address-book", DataTypes::ADDRESS_BOOK),
    ("contact-card", DataTypes::CONTACT_CARD),
    ("file-node", DataTypes::FILE_NODE),
    ("push-subscription", DataTypes::PUSH_SUBSCRIPTION),
];

/// The cache names, as `invalidate` spells them.
pub(crate) const CACHES: [(&str, CacheKind); 8] = [
    ("access-token", CacheKind::AccessToken),
    ("account", CacheKind::Account),
    ("domain", CacheKind::Domain),
    ("role", CacheKind::Role),
    ("tenant", CacheKind::Tenant),
    ("list", CacheKind::List),
    ("dkim-signer", CacheKind::DkimSigner),
    ("dav-resource", CacheKind::DavResource),
];

/// Prints lines for humans or JSON objects for machines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Printer {
    pub(crate) json: bool,
}

impl Printer {
    /// A membership change seen by this node.
    pub(crate) fn member(&self, change: &MemberEvent) {
        if self.json {
            return emit(
                json!({"type": "member", "at": now_ms(), "change": change.kind(), "detail": member_json(change)}),
            );
        }
        println!("{} member  {}", clock(), describe_member(change));
    }

    /// An item of the event stream.
    pub(crate) fn incoming(&self, item: &Incoming) {
        match item {
            Incoming::Event(delivery) => {
                let how = if delivery.directed { "directed" } else { "broadcast" };
                if self.json {
                    return emit(json!({
                        "type": "event", "at": now_ms(), "from": delivery.from.as_str(),
                        "directed": delivery.directed, "event": event_json(&delivery.event),
                    }));
                }
                println!(
                    "{} event   from {} ({how}): {}",
                    clock(),
                    delivery.from,
                    describe(&delivery.event)
                );
            }
            Incoming::Lagged(lagged) => {
                let from = lagged.from.as_ref().map(|node| node.as_str().to_owned());
                if self.json {
                    return emit(json!({
                        "type": "lagged", "at": now_ms(), "from": from,
                        "missed": lagged.missed, "reason": format!("{:?}", lagged.reason),
                    }));
                }
                println!(
                    "{} lagged  events may be lost (from {}, missed {}, {:?}): re-read the store",
                    clock(),
                    from.as_deref().unwrap_or("?"),
                    lagged.missed.map_or("?".to_owned(), |n| n.to_string()),
                    lagged.reason
                );
            }
        }
    }

    /// A frame report of the frame tap.
    pub(crate) fn frame(&self, report: &FrameReport) {
        match report {
            FrameReport::Accepted(frame) => self.accepted(frame),
            FrameReport::Rejected(frame) => self.rejected(frame),
            FrameReport::Missed(n) => {
                if self.json {
                    return emit(json!({"type": "missed", "at": now_ms(), "reports": n}));
                }
                println!("{} missed  {n} frame reports (this terminal read too slowly)", clock());
            }
        }
    }

    fn accepted(&self, frame: &AcceptedFrame) {
        let (kind, content) = match &frame.content {
            FrameContent::Heartbeat(meta) => (
                "heartbeat",
                json!({"version": meta.version, "roles": meta.roles, "started-at-ms": meta.started_at_ms}),
            ),
            FrameContent::Leave => ("leave", Value::Null),
            FrameContent::Events {
                directed,
                events,
                skipped,
            } => (
                if *directed { "directed" } else { "broadcast" },
                json!({"events": events.iter().map(event_json).collect::<Vec<_>>(), "skipped": skipped}),
            ),
        };
        if self.json {
            return emit(json!({
                "type": "frame", "at": now_ms(), "verdict": "accepted", "sender": frame.sender.as_str(),
                "incarnation": frame.incarnation, "seq": frame.seq, "bytes": frame.bytes, "kind": kind,
                "content": content,
            }));
        }
        let summary = match &frame.content {
            FrameContent::Heartbeat(meta) => format!("version {:?}, roles {:?}", meta.version, meta.roles),
            FrameContent::Leave => "graceful leave".to_owned(),
            FrameContent::Events { events, skipped, .. } => {
                let mut text = format!("{} event(s)", events.len());
                if *skipped > 0 {
                    text.push_str(&format!(" ({skipped} skipped: unknown kind or bad body)"));
                }
                for event in events {
                    text.push_str("\n               ");
                    text.push_str(&describe(event));
                }
                text
            }
        };
        println!(
            "{} ok      {} #{} (incarnation {}) {kind}, {} B: {summary}",
            clock(),
            frame.sender,
            frame.seq,
            frame.incarnation,
            frame.bytes
        );
    }

    fn rejected(&self, frame: &RejectedFrame) {
        let reason = frame.reason.as_str();
        if self.json {
            return emit(json!({
                "type": "frame", "at": now_ms(), "verdict": "rejected", "reason": reason,
                "detail": frame.detail, "sender": frame.sender.as_ref().map(|node| node.as_str()),
                "seq": frame.seq, "bytes": frame.bytes,
            }));
        }
        let from = match (&frame.sender, frame.seq) {
            (Some(sender), Some(seq)) => format!("claims {sender} #{seq}"),
            _ => "sender unknown".to_owned(),
        };
        let detail = frame.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        println!("{} REJECT  {} B, {from}: {reason}{detail}", clock(), frame.bytes);
    }
}

fn emit(value: Value) {
    println!("{value}");
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// The time of day (UTC) to the millisecond, as lines start.
fn clock() -> String {
    let ms = now_ms();
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// A membership change in words.
pub(crate) fn describe_member(change: &MemberEvent) -> String {
    match change {
        MemberEvent::Joined { node, meta, .. } => {
            format!("{node} joined (version {:?}, roles {:?})", meta.version, meta.roles)
        }
        MemberEvent::Suspect { node, phi } => format!("{node} is suspect (phi {phi:.1})"),
        MemberEvent::Failed { node } => format!("{node} FAILED (no heartbeat: presumed crashed)"),
        MemberEvent::Recovered { node } => format!("{node} recovered"),
        MemberEvent::Left { node } => format!("{node} left gracefully"),
        MemberEvent::Rejoined {
            node,
            previous,
            incarnation,
            ..
        } => format!("{node} restarted (incarnation {previous} -> {incarnation})"),
        MemberEvent::Conflict { node, incarnations } => format!(
            "{node}: TWO live processes use this node id (incarnations {} and {}): give each node its own id",
            incarnations[0], incarnations[1]
        ),
        MemberEvent::Lagged { missed } => format!("{missed} membership changes missed: re-read `members`"),
        other => format!("{other:?}"),
    }
}

fn member_json(change: &MemberEvent) -> Value {
    match change {
        MemberEvent::Joined {
            node,
            incarnation,
            meta,
            ..
        } => json!({"node": node.as_str(), "incarnation": incarnation, "version": meta.version, "roles": meta.roles}),
        MemberEvent::Suspect { node, phi } => json!({"node": node.as_str(), "phi": phi}),
        MemberEvent::Failed { node } | MemberEvent::Recovered { node } | MemberEvent::Left { node } => {
            json!({"node": node.as_str()})
        }
        MemberEvent::Rejoined {
            node,
            previous,
            incarnation,
            ..
        } => json!({"node": node.as_str(), "previous": previous, "incarnation": incarnation}),
        MemberEvent::Conflict { node, incarnations } => json!({"node": node.as_str(), "incarnations": incarnations}),
        MemberEvent::Lagged { missed } => json!({"missed": missed}),
        other => json!(format!("{other:?}")),
    }
}

/// The names of the data types in `types`, and the unknown bits left.
pub(crate) fn type_names(types: DataTypes) -> Vec<String> {
    let mut names: Vec<String> = DATA_TYPES
        .iter()
        .filter(|(_, t)| types.contains(*t))
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let known = DATA_TYPES.iter().fold(0, |bits, (_, t)| bits | t.0);
    if types.0 & !known != 0 {
        names.push(format!("0x{:x}", types.0 & !known));
    }
    names
}

fn cache_name(cache: CacheKind) -> &'static str {
    CACHES
        .iter()
        .find(|(_, kind)| *kind == cache)
        .map_or("unknown", |(name, _)| name)
}

fn reload_name(reload: &Reload) -> String {
    match reload {
        Reload::Settings => "settings".to_owned(),
        Reload::LookupStores => "lookup-stores".to_owned(),
        Reload::SpamModel => "spam-model".to_owned(),
        Reload::Named(name) => name.clone(),
    }
}

/// An event in words.
pub(crate) fn describe(event: &Event) -> String {
    match event {
        Event::StateChange(change) => format!(
            "state change: account {} change {} [{}]",
            change.account_id,
            change.change_id,
            type_names(change.types).join(", ")
        ),
        Event::PushSubscriptionChanged { account_id } => format!("push subscriptions changed: account {account_id}"),
        Event::IpBlocked { ip, expires_at_ms } => match expires_at_ms {
            Some(at) => format!(
                "IP {ip} blocked until {}",
                humantime::format_rfc3339_millis(at_time(*at))
            ),
            None => format!("IP {ip} blocked"),
        },
        Event::IpUnblocked { ip } => format!("IP {ip} unblocked"),
        Event::CertificateRenewed { id } => format!("certificate {id} renewed"),
        Event::Reload(reload) => format!("reload {}", reload_name(reload)),
        Event::Invalidate(Invalidation::All) => "invalidate every cache".to_owned(),
        Event::Invalidate(Invalidation::NegativeCache) => "invalidate the negative cache".to_owned(),
        Event::Invalidate(Invalidation::Entry { cache, id }) => format!("invalidate {} {id}", cache_name(*cache)),
        Event::Queue(QueueEvent::Paused) => "queue paused".to_owned(),
        Event::Queue(QueueEvent::Resumed) => "queue resumed".to_owned(),
        Event::Queue(QueueEvent::Refresh { due_at_ms }) => match due_at_ms {
            Some(at) => format!("queue refresh, due {}", humantime::format_rfc3339_millis(at_time(*at))),
            None => "queue refresh".to_owned(),
        },
        Event::Custom { kind, payload } => format!("custom kind {kind}, {} B: {:?}", payload.len(), payload),
        other => format!("{other:?}"),
    }
}

fn at_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

/// An event as JSON.
fn event_json(event: &Event) -> Value {
    match event {
        Event::StateChange(change) => json!({
            "kind": "state-change", "account": change.account_id, "change-id": change.change_id,
            "types": type_names(change.types),
        }),
        Event::PushSubscriptionChanged { account_id } => {
            json!({"kind": "push-subscription-changed", "account": account_id})
        }
        Event::IpBlocked { ip, expires_at_ms } => {
            json!({"kind": "ip-blocked", "ip": ip.to_string(), "expires-at-ms": expires_at_ms})
        }
        Event::IpUnblocked { ip } => json!({"kind": "ip-unblocked", "ip": ip.to_string()}),
        Event::CertificateRenewed { id } => json!({"kind": "certificate-renewed", "id": id}),
        Event::Reload(reload) => json!({"kind": "reload", "resource": reload_name(reload)}),
        Event::Invalidate(Invalidation::All) => json!({"kind": "invalidate", "cache": "all"}),
        Event::Invalidate(Invalidation::NegativeCache) => json!({"kind": "invalidate", "cache": "negative"}),
        Event::Invalidate(Invalidation::Entry { cache, id }) => {
            json!({"kind": "invalidate", "cache": cache_name(*cache), "id": id})
        }
        Event::Queue(queue) => json!({"kind": "queue", "detail": format!("{queue:?}")}),
        Event::Custom { kind, payload } => json!({"kind": "custom", "custom-kind": kind, "payload": payload.to_vec()}),
        other => json!({"kind": "other", "detail": format!("{other:?}")}),
    }
}
