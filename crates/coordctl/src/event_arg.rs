//! Events as command-line arguments (`coordctl send <event> …`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use clap::Subcommand;
use coord::{DataTypes, Event, Invalidation, Reload};

use crate::show::{CACHES, DATA_TYPES};

/// One event to send.
#[derive(Debug, Subcommand)]
pub(crate) enum EventArg {
    /// Data of an account changed (what IMAP IDLE and JMAP push watch).
    StateChange {
        /// The account id.
        #[arg(long)]
        account: u32,
        /// The store's change id after the change.
        #[arg(long, default_value_t = 0)]
        change_id: u64,
        /// The data types that changed, comma-separated: email, mailbox,
        /// thread, identity, email-submission, vacation-response,
        /// sieve-script, calendar, calendar-event, address-book,
        /// contact-card, file-node, push-subscription.
        #[arg(long, value_delimiter = ',', default_value = "email,mailbox")]
        types: Vec<String>,
    },
    /// An account's push subscriptions changed.
    PushChanged {
        /// The account id.
        #[arg(long)]
        account: u32,
    },
    /// Block an IP address on every node.
    BlockIp {
        /// The address.
        ip: IpAddr,
        /// How long the block lasts, e.g. `1h` or `30m`; forever without it.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Unblock an IP address.
    UnblockIp {
        /// The address.
        ip: IpAddr,
    },
    /// A certificate was issued or renewed.
    CertRenewed {
        /// The certificate's id, e.g. its primary domain.
        id: String,
    },
    /// Reload a resource: `settings`, `lookup-stores`, `spam-model` or any other name.
    Reload {
        /// The resource.
        resource: String,
    },
    /// Drop cache entries: `all`, `negative`, or a cache name with `--id`.
    Invalidate {
        /// `all`, `negative`, or one of access-token, account, domain, role,
        /// tenant, list, dkim-signer, dav-resource.
        cache: String,
        /// The entry's id (for a named cache).
        #[arg(long)]
        id: Option<u64>,
    },
    /// An application-defined event: a kind number and a UTF-8 payload.
    Custom {
        /// The application's kind number.
        #[arg(long)]
        kind: u32,
        /// The payload.
        #[arg(long, default_value = "")]
        payload: String,
    },
}

impl EventArg {
    /// The event these arguments describe.
    pub(crate) fn to_event(&self) -> Result<Event> {
        Ok(match self {
            EventArg::StateChange {
                account,
                change_id,
                types,
            } => Event::state_change(*account, *change_id, parse_types(types)?),
            EventArg::PushChanged { account } => Event::PushSubscriptionChanged { account_id: *account },
            EventArg::BlockIp { ip, expires_in } => Event::IpBlocked {
                ip: *ip,
                expires_at_ms: expires_in.map(|after| {
                    (SystemTime::now() + after)
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |at| at.as_millis() as u64)
                }),
            },
            EventArg::UnblockIp { ip } => Event::IpUnblocked { ip: *ip },
            EventArg::CertRenewed { id } => Event::CertificateRenewed { id: id.clone() },
            EventArg::Reload { resource } => Event::Reload(match resource.as_str() {
                "settings" => Reload::Settings,
                "lookup-stores" => Reload::LookupStores,
                "spam-model" => Reload::SpamModel,
                other => Reload::Named(other.to_owned()),
            }),
            EventArg::Invalidate { cache, id } => Event::Invalidate(parse_invalidation(cache, *id)?),
            EventArg::Custom { kind, payload } => Event::custom(*kind, payload.clone().into_bytes()),
        })
    }
}

fn parse_types(names: &[String]) -> Result<DataTypes> {
    let mut types = DataTypes::default();
    for name in names {
        let Some((_, t)) = DATA_TYPES.iter().find(|(known, _)| known == name) else {
            let known: Vec<&str> = DATA_TYPES.iter().map(|(known, _)| *known).collect();
            bail!("unknown data type `{name}` in --types: use one of {}", known.join(", "));
        };
        types = types | *t;
    }
    Ok(types)
}

fn parse_invalidation(cache: &str, id: Option<u64>) -> Result<Invalidation> {
    match (cache, id) {
        ("all", None) => Ok(Invalidation::All),
        ("negative", None) => Ok(Invalidation::NegativeCache),
        ("all" | "negative", Some(_)) => bail!("`invalidate {cache}` takes no --id"),
        (name, id) => {
            let Some((_, kind)) = CACHES.iter().find(|(known, _)| *known == name) else {
                let known: Vec<&str> = CACHES.iter().map(|(known, _)| *known).collect();
                bail!(
                    "unknown cache `{name}`: use all, negative, or one of {} with --id",
                    known.join(", ")
                );
            };
            let Some(id) = id else {
                bail!("`invalidate {name}` needs the entry's --id");
            };
            Ok(Invalidation::Entry { cache: *kind, id })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_change_types_are_parsed_and_unknown_ones_named() {
        let arg = EventArg::StateChange {
            account: 42,
            change_id: 7,
            types: vec!["email".into(), "calendar".into()],
        };
        assert_eq!(
            arg.to_event().unwrap(),
            Event::state_change(42, 7, DataTypes::EMAIL | DataTypes::CALENDAR)
        );
        let bad = EventArg::StateChange {
            account: 42,
            change_id: 7,
            types: vec!["emails".into()],
        };
        let error = bad.to_event().unwrap_err().to_string();
        assert!(error.contains("`emails`") && error.contains("mailbox"), "{error}");
    }

    #[test]
    fn invalidations_need_an_id_exactly_for_named_caches() {
        let event = |cache: &str, id| {
            EventArg::Invalidate {
                cache: cache.into(),
                id,
            }
            .to_event()
        };
        assert_eq!(event("all", None).unwrap(), Event::Invalidate(Invalidation::All));
        assert_eq!(
            event("domain", Some(3)).unwrap(),
            Event::Invalidate(Invalidation::Entry {
                cache: coord::CacheKind::Domain,
                id: 3
            })
        );
        assert!(event("domain", None).unwrap_err().to_string().contains("--id"));
        assert!(event("all", Some(1)).is_err());
        assert!(
            event("nope", Some(1))
                .unwrap_err()
                .to_string()
                .contains("unknown cache")
        );
    }

    #[test]
    fn a_block_with_expiry_lies_in_the_future() {
        let event = EventArg::BlockIp {
            ip: "192.0.2.7".parse().unwrap(),
            expires_in: Some(Duration::from_secs(3600)),
        }
        .to_event()
        .unwrap();
        let Event::IpBlocked {
            expires_at_ms: Some(at),
            ..
        } = event
        else {
            panic!("{event:?}");
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(at > now + 3_500_000 && at <= now + 3_600_000, "{at} vs {now}");
    }
}
