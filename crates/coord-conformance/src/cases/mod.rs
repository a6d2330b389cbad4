//! Every case of `CONFORMANCE.md`, one `pub async fn` each, grouped by section.

pub mod delivery;
pub mod faults;
pub mod flow;
pub mod lifecycle;
pub mod membership;
pub mod wire;

use futures::future::BoxFuture;

use crate::fixture::Fixture;
use crate::harness::CaseResult;

/// One case of the catalogue.
pub struct Case {
    /// Its id: section letter and number, e.g. `B5`.
    pub id: &'static str,
    /// What it checks, in a few words.
    pub name: &'static str,
    /// Runs it against a fixture.
    pub run: for<'a> fn(&'a dyn Fixture) -> BoxFuture<'a, CaseResult>,
}

macro_rules! cases {
    ($($id:literal $name:literal $f:path;)*) => {
        /// Every case, in catalogue order.
        pub const CASES: &[Case] = &[$(Case { id: $id, name: $name, run: |fx| Box::pin($f(fx)) },)*];
    };
}

cases! {
    "A1" "start; unreachable server fails fast" lifecycle::a1_start;
    "A2" "health reports flow and outage" lifecycle::a2_health;
    "A3" "shutdown: idempotent, flush, leave, streams end" lifecycle::a3_shutdown;
    "A4" "10 start/shutdown cycles leak nothing" lifecycle::a4_cycles;
    "B5" "1,000 broadcasts, byte-identical" delivery::b5_broadcast;
    "B6" "order per sender, 16 senders" delivery::b6_order;
    "B7" "namespace isolation" delivery::b7_isolation;
    "B8" "own broadcasts not echoed" delivery::b8_no_echo;
    "B9" "directed send; unknown node reported" delivery::b9_directed;
    "B10" "fan-out 3 × 5,000 to 5" delivery::b10_fan_out;
    "B11" "batching 100,000 small events" delivery::b11_batching;
    "C12" "never-reading receiver is bounded" flow::c12_slow_subscriber;
    "C13" "failing handler does not stall" flow::c13_failing_handler;
    "C14" "one Lagged per sequence gap" flow::c14_gap;
    "D15" "garbage frames counted and skipped" wire::d15_garbage;
    "D16" "unknown event tag skipped alone" wire::d16_unknown_tag;
    "D17" "unsigned, wrong key, replay dropped" wire::d17_sealed;
    "D18" "secrets never printed" wire::d18_secret_hidden;
    "E19" "server restarted twice mid-stream" faults::e19_server_restart;
    "E20" "cut connection: failed, then alive" faults::e20_cut;
    "E21" "silent subscription healed" faults::e21_silent_subscription;
    "F22" "join visible within two heartbeats" membership::f22_join;
    "F23" "graceful leave is left, not failed" membership::f23_leave;
    "F24" "crash detected as failed" membership::f24_crash;
    "F25" "no false failed: pause, 20 % loss" membership::f25_no_false_alarms;
    "F26" "restart reported once as rejoined" membership::f26_restart;
    "F27" "same node id twice is a conflict" membership::f27_conflict;
    "F28" "each change emitted once" membership::f28_exactly_once;
}
