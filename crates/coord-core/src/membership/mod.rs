//! Membership: who is alive, written once above every transport.
//!
//! Every node sends a heartbeat on the broadcast channel every
//! `heartbeat-interval`; each observer runs a phi-accrual detector per peer
//! and moves it through alive → suspect → failed, or to left on a leave frame.
//! `docs/failure-detection.md` explains the math and the measured figures.

mod config;
mod detector;
mod view;

pub use config::{DetectorSettings, MembershipConfig, Profile};
pub use view::{Member, MemberEvent, MemberState};

pub(crate) use view::Membership;
