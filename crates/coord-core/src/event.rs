//! The event schema: what nodes tell each other.
//!
//! Events carry ids and hints, never the data itself: receivers reload from
//! the shared store. On the wire each event is a tag plus its own
//! length-delimited body ([`RawEvent`]), so a receiver that does not know a tag
//! skips that event alone.

use std::net::IpAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One event, as the application sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Data of an account changed (IMAP IDLE, JMAP and DAV push watchers reload).
    StateChange(StateChange),
    /// An account's push subscriptions changed; the node serving web push reloads them.
    PushSubscriptionChanged {
        /// The account whose subscriptions changed.
        account_id: u32,
    },
    /// An IP address was blocked; every node enforces it.
    IpBlocked {
        /// The blocked address.
        ip: IpAddr,
        /// When the block ends, in milliseconds since the Unix epoch; `None` for never.
        expires_at_ms: Option<u64>,
    },
    /// An IP address was unblocked.
    IpUnblocked {
        /// The unblocked address.
        ip: IpAddr,
    },
    /// An ACME certificate was issued or renewed; every node reloads it.
    CertificateRenewed {
        /// The certificate's id (e.g. its primary domain).
        id: String,
    },
    /// A named resource must be reloaded.
    Reload(Reload),
    /// Cached entries must be dropped.
    Invalidate(Invalidation),
    /// The outbound queue's status changed.
    Queue(QueueEvent),
    /// An application-defined event: a kind the application registers plus opaque bytes.
    Custom {
        /// The application's kind number.
        kind: u32,
        /// Opaque payload, delivered byte for byte.
        payload: Bytes,
    },
}

/// Data of one account changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// The account whose data changed.
    pub account_id: u32,
    /// The store's change id after the change (watchers compare it with theirs).
    pub change_id: u64,
    /// Which data types changed.
    pub types: DataTypes,
}

/// A set of data types, as a bit set (compact on the wire, forward compatible:
/// a receiver keeps bits it does not know).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataTypes(pub u64);

impl DataTypes {
    /// Emails.
    pub const EMAIL: DataTypes = DataTypes(1 << 0);
    /// Mailboxes.
    pub const MAILBOX: DataTypes = DataTypes(1 << 1);
    /// Threads.
    pub const THREAD: DataTypes = DataTypes(1 << 2);
    /// Identities.
    pub const IDENTITY: DataTypes = DataTypes(1 << 3);
    /// Email submissions.
    pub const EMAIL_SUBMISSION: DataTypes = DataTypes(1 << 4);
    /// Vacation responses.
    pub const VACATION_RESPONSE: DataTypes = DataTypes(1 << 5);
    /// Sieve scripts.
    pub const SIEVE_SCRIPT: DataTypes = DataTypes(1 << 6);
    /// Calendars.
    pub const CALENDAR: DataTypes = DataTypes(1 << 7);
    /// Calendar events.
    pub const CALENDAR_EVENT: DataTypes = DataTypes(1 << 8);
    /// Address books.
    pub const ADDRESS_BOOK: DataTypes = DataTypes(1 << 9);
    /// Contact cards.
    pub const CONTACT_CARD: DataTypes = DataTypes(1 << 10);
    /// Files (WebDAV).
    pub const FILE_NODE: DataTypes = DataTypes(1 << 11);
    /// Push subscriptions.
    pub const PUSH_SUBSCRIPTION: DataTypes = DataTypes(1 << 12);

    /// Whether every type of `other` is in `self`.
    pub fn contains(self, other: DataTypes) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for DataTypes {
    type Output = DataTypes;
    fn bitor(self, rhs: DataTypes) -> DataTypes {
        DataTypes(self.0 | rhs.0)
    }
}

/// A resource to reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reload {
    /// The settings.
    Settings,
    /// The lookup stores.
    LookupStores,
    /// The spam classifier model.
    SpamModel,
    /// Any other resource, by name.
    Named(String),
}

/// Which cache entries to drop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Invalidation {
    /// Every cache, entirely.
    All,
    /// The negative cache (remembered misses).
    NegativeCache,
    /// One entry of one typed cache.
    Entry {
        /// The cache.
        cache: CacheKind,
        /// The entry's id.
        id: u64,
    },
}

/// The typed caches of a mail and collaboration server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CacheKind {
    /// Access tokens.
    AccessToken,
    /// Accounts.
    Account,
    /// Domains.
    Domain,
    /// Roles.
    Role,
    /// Tenants.
    Tenant,
    /// Mailing lists.
    List,
    /// DKIM signers.
    DkimSigner,
    /// DAV resources.
    DavResource,
}

/// Outbound queue status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueEvent {
    /// Delivery was paused.
    Paused,
    /// Delivery was resumed.
    Resumed,
    /// A queued message is due: queue runners should look now.
    Refresh {
        /// When the message is due, in milliseconds since the Unix epoch.
        due_at_ms: Option<u64>,
    },
}

/// An event as it travels: a tag and its encoded body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawEvent {
    /// Which event this is (see [`Event::tag`]).
    pub tag: u16,
    /// The postcard-encoded body.
    pub body: Bytes,
}

/// Why a [`RawEvent`] could not become an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventDecodeError {
    /// The tag is not known to this version (skip the event, keep the rest).
    UnknownTag(u16),
    /// The tag is known but the body does not decode.
    BadBody(u16),
}

mod tag {
    pub(super) const STATE_CHANGE: u16 = 1;
    pub(super) const PUSH_SUBSCRIPTION_CHANGED: u16 = 2;
    pub(super) const IP_BLOCKED: u16 = 3;
    pub(super) const IP_UNBLOCKED: u16 = 4;
    pub(super) const CERTIFICATE_RENEWED: u16 = 5;
    pub(super) const RELOAD: u16 = 6;
    pub(super) const INVALIDATE: u16 = 7;
    pub(super) const QUEUE: u16 = 8;
    pub(super) const CUSTOM: u16 = 9;
}

#[derive(Serialize, Deserialize)]
struct IpBlockedBody {
    ip: IpAddr,
    expires_at_ms: Option<u64>,
}

#[derive(Serialize)]
struct CustomBody {
    kind: u32,
    payload: Bytes,
}

/// [`CustomBody`] as decoded: the payload borrowed from the event's body,
/// then shared with it ([`Bytes::slice_ref`]) rather than copied.
#[derive(Deserialize)]
struct CustomBodyRef<'a> {
    kind: u32,
    payload: &'a [u8],
}

fn to_body<T: Serialize>(value: &T) -> Bytes {
    // Serializing these plain structs into a Vec cannot fail.
    Bytes::from(postcard::to_stdvec(value).expect("postcard encodes event bodies"))
}

fn from_body<'a, T: Deserialize<'a>>(tag: u16, body: &'a [u8]) -> Result<T, EventDecodeError> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        _ => Err(EventDecodeError::BadBody(tag)),
    }
}

impl Event {
    /// A state change of `account_id`'s `types`, at `change_id`.
    pub fn state_change(account_id: u32, change_id: u64, types: DataTypes) -> Event {
        Event::StateChange(StateChange {
            account_id,
            change_id,
            types,
        })
    }

    /// An application-defined event.
    pub fn custom(kind: u32, payload: impl Into<Bytes>) -> Event {
        Event::Custom {
            kind,
            payload: payload.into(),
        }
    }

    /// The wire tag of this event.
    pub fn tag(&self) -> u16 {
        match self {
            Event::StateChange(_) => tag::STATE_CHANGE,
            Event::PushSubscriptionChanged { .. } => tag::PUSH_SUBSCRIPTION_CHANGED,
            Event::IpBlocked { .. } => tag::IP_BLOCKED,
            Event::IpUnblocked { .. } => tag::IP_UNBLOCKED,
            Event::CertificateRenewed { .. } => tag::CERTIFICATE_RENEWED,
            Event::Reload(_) => tag::RELOAD,
            Event::Invalidate(_) => tag::INVALIDATE,
            Event::Queue(_) => tag::QUEUE,
            Event::Custom { .. } => tag::CUSTOM,
        }
    }

    /// Encodes the event into its wire form.
    pub fn encode(&self) -> RawEvent {
        let body = match self {
            Event::StateChange(change) => to_body(change),
            Event::PushSubscriptionChanged { account_id } => to_body(account_id),
            Event::IpBlocked { ip, expires_at_ms } => to_body(&IpBlockedBody {
                ip: *ip,
                expires_at_ms: *expires_at_ms,
            }),
            Event::IpUnblocked { ip } => to_body(ip),
            Event::CertificateRenewed { id } => to_body(id),
            Event::Reload(reload) => to_body(reload),
            Event::Invalidate(invalidation) => to_body(invalidation),
            Event::Queue(queue) => to_body(queue),
            Event::Custom { kind, payload } => to_body(&CustomBody {
                kind: *kind,
                payload: payload.clone(),
            }),
        };
        RawEvent { tag: self.tag(), body }
    }
}

impl RawEvent {
    /// Decodes the event; an unknown tag or a bad body is an error for this
    /// event alone.
    pub fn decode(&self) -> Result<Event, EventDecodeError> {
        let (t, b) = (self.tag, &self.body[..]);
        Ok(match t {
            tag::STATE_CHANGE => Event::StateChange(from_body(t, b)?),
            tag::PUSH_SUBSCRIPTION_CHANGED => Event::PushSubscriptionChanged {
                account_id: from_body(t, b)?,
            },
            tag::IP_BLOCKED => {
                let body: IpBlockedBody = from_body(t, b)?;
                Event::IpBlocked {
                    ip: body.ip,
                    expires_at_ms: body.expires_at_ms,
                }
            }
            tag::IP_UNBLOCKED => Event::IpUnblocked { ip: from_body(t, b)? },
            tag::CERTIFICATE_RENEWED => Event::CertificateRenewed { id: from_body(t, b)? },
            tag::RELOAD => Event::Reload(from_body(t, b)?),
            tag::INVALIDATE => Event::Invalidate(from_body(t, b)?),
            tag::QUEUE => Event::Queue(from_body(t, b)?),
            tag::CUSTOM => {
                let body: CustomBodyRef<'_> = from_body(t, b)?;
                Event::Custom {
                    kind: body.kind,
                    payload: self.body.slice_ref(body.payload),
                }
            }
            unknown => return Err(EventDecodeError::UnknownTag(unknown)),
        })
    }

    /// Bytes this event takes inside a frame (tag, length prefix and body).
    pub fn encoded_len(&self) -> usize {
        varint_len(u64::from(self.tag)) + varint_len(self.body.len() as u64) + self.body.len()
    }
}

/// Length of `value` as a postcard (LEB128) varint.
pub(crate) fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One event of every kind, for round-trip and golden tests.
    pub(crate) fn one_of_each() -> Vec<Event> {
        vec![
            Event::state_change(42, 7, DataTypes::EMAIL | DataTypes::MAILBOX),
            Event::PushSubscriptionChanged { account_id: 42 },
            Event::IpBlocked {
                ip: "192.0.2.7".parse().unwrap(),
                expires_at_ms: Some(1_800_000_000_000),
            },
            Event::IpUnblocked {
                ip: "2001:db8::1".parse().unwrap(),
            },
            Event::CertificateRenewed {
                id: "mail.example.org".into(),
            },
            Event::Reload(Reload::Settings),
            Event::Reload(Reload::Named("dkim-keys".into())),
            Event::Invalidate(Invalidation::All),
            Event::Invalidate(Invalidation::NegativeCache),
            Event::Invalidate(Invalidation::Entry {
                cache: CacheKind::AccessToken,
                id: 99,
            }),
            Event::Queue(QueueEvent::Paused),
            Event::Queue(QueueEvent::Refresh { due_at_ms: Some(5) }),
            Event::custom(1000, &b"opaque \x00 bytes"[..]),
        ]
    }

    #[test]
    fn every_event_round_trips() {
        for event in one_of_each() {
            let raw = event.encode();
            assert_eq!(raw.decode().unwrap(), event);
        }
    }

    #[test]
    fn unknown_tag_and_bad_body_are_reported_per_event() {
        let raw = RawEvent {
            tag: 999,
            body: Bytes::from_static(b"x"),
        };
        assert_eq!(raw.decode(), Err(EventDecodeError::UnknownTag(999)));
        let raw = RawEvent {
            tag: tag::IP_UNBLOCKED,
            body: Bytes::from_static(&[9]),
        };
        assert_eq!(raw.decode(), Err(EventDecodeError::BadBody(tag::IP_UNBLOCKED)));
    }

    #[test]
    fn varint_len_matches_postcard() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(varint_len(v), postcard::to_stdvec(&v).unwrap().len(), "{v}");
        }
    }
}
