//! Runs every case against one fixture, prints the matrix, and writes the
//! JSON report `cargo xtask` collects.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::cases::{CASES, Case};
use crate::fixture::Fixture;
use crate::harness::Verdict;

/// Upper bound of one case's run time; a case still running then fails.
const CASE_TIMEOUT: Duration = Duration::from_secs(180);
/// Names the directory the JSON report goes to (set by `cargo xtask`).
pub const REPORT_DIR_ENV: &str = "COORD_CONFORMANCE_REPORT_DIR";
/// Restricts a run to some cases: a comma-separated list of ids (`B5,F24`).
pub const CASES_ENV: &str = "COORD_CONFORMANCE_CASES";

/// A case's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The backend kept the contract.
    #[serde(rename = "pass")]
    Pass,
    /// The backend broke it.
    #[serde(rename = "fail")]
    Fail,
    /// The backend's harness lacks a feature the case needs.
    #[serde(rename = "n/a")]
    NotApplicable,
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    /// The case id, e.g. `B5`.
    pub id: &'static str,
    /// What the case checks.
    pub name: &'static str,
    /// Its outcome.
    pub outcome: Outcome,
    /// How long it ran.
    pub millis: u64,
    /// What was measured, why it failed, or which feature it needs.
    pub detail: String,
}

/// The report of one backend's run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The backend's name.
    pub backend: &'static str,
    /// The deployment, when the backend runs the suite on several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<&'static str>,
    /// One row per case run.
    pub cases: Vec<CaseReport>,
}

impl Report {
    /// `backend`, or `backend-variant`: the report's file name and column.
    pub fn label(&self) -> String {
        match self.variant {
            Some(variant) => format!("{}-{variant}", self.backend),
            None => self.backend.to_owned(),
        }
    }

    /// The cases that failed.
    pub fn failures(&self) -> Vec<&CaseReport> {
        self.cases.iter().filter(|c| c.outcome == Outcome::Fail).collect()
    }

    /// The matrix as text: case × outcome × time × detail.
    pub fn table(&self) -> String {
        let width = self.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = format!("conformance: {}\n", self.label());
        for c in &self.cases {
            let outcome = match c.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::NotApplicable => "n/a",
            };
            let _ = writeln!(
                out,
                "  {:<4} {:<width$}  {:<4} {:>7}ms  {}",
                c.id, c.name, outcome, c.millis, c.detail
            );
        }
        out
    }
}

/// Runs the suite (or the cases named in `COORD_CONFORMANCE_CASES`) against
/// `fixture`, printing each case as it finishes, then the matrix; writes the
/// JSON report when `COORD_CONFORMANCE_REPORT_DIR` is set.
pub async fn run(fixture: &dyn Fixture) -> Report {
    crate::logs::install();
    let only: Option<Vec<String>> = std::env::var(CASES_ENV)
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let mut report = Report {
        backend: fixture.backend(),
        variant: fixture.variant(),
        cases: Vec::new(),
    };
    let label = report.label();
    for case in CASES {
        if only.as_ref().is_some_and(|only| !only.iter().any(|id| id == case.id)) {
            continue;
        }
        let row = run_case(fixture, case).await;
        println!(
            "{label} {} {} ({} ms) {}",
            row.id,
            outcome_word(row.outcome),
            row.millis,
            row.detail
        );
        report.cases.push(row);
    }
    println!("\n{}", report.table());
    if let Some(dir) = std::env::var_os(REPORT_DIR_ENV) {
        write_report(PathBuf::from(dir), &report);
    }
    report
}

/// Runs the suite like [`run`] and panics (failing the calling test) if any
/// case failed.
pub async fn run_and_check(fixture: &dyn Fixture) {
    let report = run(fixture).await;
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "{} conformance case(s) failed on {}:\n{}",
        failures.len(),
        report.label(),
        failures
            .iter()
            .map(|c| format!("  {} {}: {}", c.id, c.name, c.detail))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::NotApplicable => "n/a",
    }
}

async fn run_case(fixture: &dyn Fixture, case: &Case) -> CaseReport {
    let start = Instant::now();
    let result = tokio::time::timeout(CASE_TIMEOUT, (case.run)(fixture)).await;
    let millis = start.elapsed().as_millis() as u64;
    let (outcome, detail) = match result {
        Ok(Ok(note)) => (Outcome::Pass, note),
        Ok(Err(Verdict::Fail(why))) => (Outcome::Fail, why),
        Ok(Err(Verdict::NotApplicable(why))) => (Outcome::NotApplicable, why),
        Err(_) => (Outcome::Fail, format!("still running after {CASE_TIMEOUT:?}")),
    };
    CaseReport {
        id: case.id,
        name: case.name,
        outcome,
        millis,
        detail,
    }
}

fn write_report(dir: PathBuf, report: &Report) {
    let path = dir.join(format!("{}.json", report.label()));
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, serde_json::to_vec_pretty(report).expect("reports serialize")));
    if let Err(error) = written {
        panic!("cannot write the conformance report {}: {error}", path.display());
    }
}
