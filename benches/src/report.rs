//! The report: one backend's figures with the ratios, and the markdown
//! tables of a run.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::Spread;
use crate::{CoordFigures, Latency, RawFigures};

/// One backend's figures: the coord half, and the raw half when measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BackendReport {
    /// The backend's name in the table, e.g. `nats`.
    pub backend: String,
    /// The raw client, if measured in the same run.
    pub raw: Option<RawFigures>,
    /// coord on the backend.
    pub coord: CoordFigures,
    /// coord events/s over the raw client's best messages/s (medians).
    pub throughput_ratio: Option<f64>,
    /// coord's median p50 latency minus the raw client's, at 10 % load, µs.
    pub added_p50_us: Option<f64>,
}

impl BackendReport {
    /// The report of `coord` beside `raw`, with the ratios computed.
    pub fn new(backend: impl Into<String>, raw: Option<RawFigures>, coord: CoordFigures) -> BackendReport {
        let throughput_ratio = raw.as_ref().map(|raw| {
            let best = raw.unbatched.per_s.median.max(raw.batched.per_s.median);
            coord.throughput.per_s.median / best.max(f64::MIN_POSITIVE)
        });
        let at_ten = |latency: &[Latency]| latency.iter().find(|l| l.load < 0.2).map(|l| l.p50_us.median);
        let added_p50_us = raw
            .as_ref()
            .and_then(|raw| Some(at_ten(&coord.latency)? - at_ten(&raw.latency)?));
        BackendReport {
            backend: backend.into(),
            raw,
            coord,
            throughput_ratio,
            added_p50_us,
        }
    }
}

impl From<CoordFigures> for BackendReport {
    fn from(coord: CoordFigures) -> BackendReport {
        BackendReport::new(coord.backend.clone(), None, coord)
    }
}

/// `1.23 M`, `456 k`, `789`.
fn si(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e4 => format!("{:.0} k", v / 1e3),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

/// A median with its spread: `1.23 M ±4%`.
fn spread(value: &Spread) -> String {
    if value.runs == 0 {
        return "-".into();
    }
    format!("{} ±{:.0}%", si(value.median), value.spread_percent())
}

/// `p50 / p99 / p999` in µs (medians over the repetitions).
fn percentiles(latency: Option<&Latency>) -> String {
    latency.map_or("-".into(), |l| {
        format!(
            "{:.0} / {:.0} / {:.0}",
            l.p50_us.median, l.p99_us.median, l.p999_us.median
        )
    })
}

fn at(latency: &[Latency], load: f64) -> Option<&Latency> {
    latency.iter().find(|l| (l.load - load).abs() < 1e-6)
}

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn header(out: &mut String, names: &[&str]) {
    row(out, &names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    row(out, &names.iter().map(|_| "---".to_string()).collect::<Vec<_>>());
}

/// The markdown tables of `reports`: throughput and ratios, latency, and
/// membership and memory. Medians over the repetitions, ± half the range
/// in percent of the median.
pub fn markdown(reports: &[BackendReport]) -> String {
    let mut out = String::new();
    out.push_str("### Throughput (64-byte messages; coord: 1 sender → 2 receivers, per receiver)\n\n");
    header(
        &mut out,
        &[
            "backend",
            "raw client",
            "raw unbatched msg/s",
            "raw batched msg/s",
            "coord events/s",
            "coord payload B/s",
            "coord / raw best",
            "delivered (raw, coord)",
        ],
    );
    for report in reports {
        let raw = report.raw.as_ref();
        row(
            &mut out,
            &[
                report.backend.clone(),
                raw.map_or("-".into(), |r| r.client.clone()),
                raw.map_or("-".into(), |r| spread(&r.unbatched.per_s)),
                raw.map_or("-".into(), |r| spread(&r.batched.per_s)),
                spread(&report.coord.throughput.per_s),
                spread(&report.coord.throughput.bytes_per_s),
                report.throughput_ratio.map_or("-".into(), |r| format!("{r:.2}×")),
                format!(
                    "{}, {:.1}%",
                    raw.map_or("-".into(), |r| format!(
                        "{:.1}%",
                        100.0 * r.batched.delivered.min(r.unbatched.delivered)
                    )),
                    100.0 * report.coord.throughput.delivered
                ),
            ],
        );
    }
    out.push_str(
        "\n### One-way latency, µs: p50 / p99 / p999 (raw: batched mode; each at its own measured maximum)\n\n",
    );
    header(
        &mut out,
        &[
            "backend",
            "raw @10%",
            "coord @10%",
            "coord added p50 @10%",
            "raw @50%",
            "coord @50%",
        ],
    );
    for report in reports {
        let raw = report.raw.as_ref().map(|r| r.latency.as_slice()).unwrap_or_default();
        let coord = report.coord.latency.as_slice();
        row(
            &mut out,
            &[
                report.backend.clone(),
                percentiles(at(raw, 0.1)),
                percentiles(at(coord, 0.1)),
                report.added_p50_us.map_or("-".into(), |a| format!("{a:+.0}")),
                percentiles(at(raw, 0.5)),
                percentiles(at(coord, 0.5)),
            ],
        );
    }
    out.push_str("\n### Membership and memory\n\n");
    header(
        &mut out,
        &[
            "backend",
            "crash detected, fast (ms)",
            "crash detected, default (ms)",
            "control B/s per node, fast",
            "control B/s per node, default",
            "stalled receiver: peak RSS (idle → peak)",
        ],
    );
    for report in reports {
        let detection = |profile: &str| report.coord.detection.iter().find(|d| d.profile == profile);
        let ms = |profile| detection(profile).map_or("-".into(), |d| spread(&d.detect_ms));
        let control = |profile| detection(profile).map_or("-".into(), |d| spread(&d.control_bytes_per_s));
        let memory = report.coord.memory.as_ref().map_or("not measured".into(), |m| {
            format!(
                "{:.1} → {:.1} MiB ({} of {} events taken)",
                m.idle_kib as f64 / 1024.0,
                m.peak_kib as f64 / 1024.0,
                m.received,
                m.events
            )
        });
        row(
            &mut out,
            &[
                report.backend.clone(),
                ms("fast"),
                ms("default"),
                control("fast"),
                control("default"),
                memory,
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Throughput;

    #[test]
    fn ratios_and_table() {
        let throughput = |median: f64| Throughput {
            per_s: Spread::of(&[median]),
            bytes_per_s: Spread::of(&[median * 64.0]),
            delivered: 1.0,
        };
        let latency = |p50: f64| Latency {
            load: 0.1,
            p50_us: Spread::of(&[p50]),
            ..Latency::default()
        };
        let raw = RawFigures {
            client: "raw".into(),
            unbatched: throughput(100.0),
            batched: throughput(1_000.0),
            latency: vec![latency(40.0)],
            ..RawFigures::default()
        };
        let coord = CoordFigures {
            backend: "x".into(),
            throughput: throughput(3_500.0),
            latency: vec![latency(70.0)],
            ..CoordFigures::default()
        };
        let report = BackendReport::new("x", Some(raw), coord);
        assert_eq!(report.throughput_ratio, Some(3.5));
        assert_eq!(report.added_p50_us, Some(30.0));
        let table = markdown(&[report]);
        assert!(
            table.contains("| x | raw | 100 ±0% | 1.0 k ±0% | 3.5 k ±0% |"),
            "{table}"
        );
        assert!(table.contains("3.50×"), "{table}");
    }
}
