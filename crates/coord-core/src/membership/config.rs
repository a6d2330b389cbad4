//! Membership settings: a named profile plus optional overrides.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// A named set of failure-detection defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// 100 ms heartbeats; a crash is detected in about 1 s.
    Fast,
    /// 500 ms heartbeats; a crash is detected within 3 s.
    #[default]
    Default,
}

/// Heartbeat and detector settings, as configured: a profile, and any value
/// set here overrides the profile's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MembershipConfig {
    /// The profile the unset values come from.
    pub profile: Profile,
    /// How often this node sends a heartbeat.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Option<Duration>,
    /// Phi at which a peer is reported failed.
    pub phi_threshold: Option<f64>,
    /// Phi at which a peer is reported suspect.
    pub suspect_phi: Option<f64>,
    /// Lower bound of the inter-arrival standard deviation the detector uses.
    #[serde(with = "humantime_serde")]
    pub min_std_dev: Option<Duration>,
    /// A silence this long beyond the usual interval raises no alarm (GC, load).
    #[serde(with = "humantime_serde")]
    pub acceptable_pause: Option<Duration>,
    /// How many recent inter-arrival intervals the detector keeps per peer.
    pub window: Option<usize>,
}

/// Resolved settings the engine runs with.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DetectorSettings {
    /// How often heartbeats are sent.
    pub heartbeat_interval: Duration,
    /// Phi at which a peer is failed.
    pub phi_threshold: f64,
    /// Phi at which a peer is suspect.
    pub suspect_phi: f64,
    /// Lower bound of the standard deviation.
    pub min_std_dev: Duration,
    /// Added to the mean interval before phi is computed.
    pub acceptable_pause: Duration,
    /// Intervals kept per peer.
    pub window: usize,
}

impl DetectorSettings {
    /// The settings of `profile`.
    pub fn of(profile: Profile) -> Self {
        match profile {
            Profile::Fast => DetectorSettings {
                heartbeat_interval: Duration::from_millis(100),
                phi_threshold: 8.0,
                suspect_phi: 3.0,
                min_std_dev: Duration::from_millis(100),
                acceptable_pause: Duration::from_millis(300),
                window: 100,
            },
            Profile::Default => DetectorSettings {
                heartbeat_interval: Duration::from_millis(500),
                phi_threshold: 8.0,
                suspect_phi: 3.0,
                min_std_dev: Duration::from_millis(200),
                acceptable_pause: Duration::from_millis(1000),
                window: 100,
            },
        }
    }
}

impl MembershipConfig {
    /// The configuration of a profile, with no overrides.
    pub fn profile(profile: Profile) -> Self {
        MembershipConfig {
            profile,
            ..Default::default()
        }
    }

    /// The profile's settings with this configuration's overrides applied.
    pub fn settings(&self) -> DetectorSettings {
        let base = DetectorSettings::of(self.profile);
        DetectorSettings {
            heartbeat_interval: self.heartbeat_interval.unwrap_or(base.heartbeat_interval),
            phi_threshold: self.phi_threshold.unwrap_or(base.phi_threshold),
            suspect_phi: self.suspect_phi.unwrap_or(base.suspect_phi),
            min_std_dev: self.min_std_dev.unwrap_or(base.min_std_dev),
            acceptable_pause: self.acceptable_pause.unwrap_or(base.acceptable_pause),
            window: self.window.unwrap_or(base.window),
        }
    }

    /// Checks the resolved settings; the error names the key and the fix.
    pub fn validate(&self) -> Result<()> {
        let s = self.settings();
        let bad = |key: &str, fix: &str| {
            Err(Error::new(
                ErrorKind::Config,
                "config",
                format!("`membership.{key}` is invalid: {fix}"),
            ))
        };
        if s.heartbeat_interval < Duration::from_millis(10) {
            return bad("heartbeat-interval", "use at least \"10ms\"");
        }
        if !(s.phi_threshold.is_finite() && s.phi_threshold > 0.0) {
            return bad("phi-threshold", "use a positive number such as 8");
        }
        if !(s.suspect_phi.is_finite() && s.suspect_phi > 0.0 && s.suspect_phi <= s.phi_threshold) {
            return bad("suspect-phi", "use a positive number no larger than phi-threshold");
        }
        if s.min_std_dev.is_zero() {
            return bad("min-std-dev", "use a positive duration such as \"100ms\"");
        }
        if s.window < 2 {
            return bad("window", "keep at least 2 intervals");
        }
        Ok(())
    }
}
