//! The conformance matrix: reading the JSON reports that the suite's runner
//! writes, one per backend run, and printing them as a case × backend table.
//!
//! A report is `<dir>/<backend>.json`, or `<dir>/<backend>-<variant>.json`
//! for a variant of a backend; its `backend` field holds the plain backend
//! name and its file name (without `.json`) heads its column:
//!
//! ```json
//! {"backend":"memory","cases":[{"id":"A1","name":"start succeeds; bad address fails fast",
//!   "outcome":"pass","millis":12,"detail":""}]}
//! ```

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::table;

/// One backend run's report, as the suite's runner writes it.
#[derive(Debug, Deserialize)]
struct Report {
    /// The backend's name, without any variant.
    backend: String,
    /// Every case of the run, in catalogue order.
    cases: Vec<Case>,
}

/// One case's result in a report.
#[derive(Debug, Deserialize)]
struct Case {
    /// The catalogue id, such as `A1`.
    id: String,
    /// The case's one-line name.
    name: String,
    /// How the case ended.
    outcome: Outcome,
    /// How long the case took, in milliseconds.
    #[serde(default)]
    millis: u64,
    /// Why a case failed, or why it does not apply; empty on a pass.
    #[serde(default)]
    detail: String,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Outcome {
    /// The backend met the contract line.
    #[serde(rename = "pass")]
    Pass,
    /// The backend broke the contract line.
    #[serde(rename = "fail")]
    Fail,
    /// The backend declares no capability for the case; `detail` says why.
    #[serde(rename = "n/a")]
    NotApplicable,
}

/// A report and the label of its column: its file name without `.json`.
#[derive(Debug)]
struct Column {
    /// The column heading: `<backend>` or `<backend>-<variant>`.
    label: String,
    /// The report shown in the column.
    report: Report,
}

/// How many cells of the matrix ended each way.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    /// Cells that passed.
    passed: usize,
    /// Cells that failed.
    failed: usize,
    /// Cells that do not apply.
    not_applicable: usize,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            passed,
            failed,
            not_applicable,
        } = self;
        write!(f, "{passed} passed, {failed} failed, {not_applicable} n/a")
    }
}

/// Deletes every report in `dir`, creating `dir` if it is missing, so that
/// only the reports of the coming run are read.
pub(crate) fn clear(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for path in report_paths(dir)? {
        fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
    }
    Ok(())
}

/// Reads every report in `dir` and prints the matrix; fails if a case failed
/// or a backend in `expected` has no report.
pub(crate) fn check(dir: &Path, expected: &[&str]) -> Result<()> {
    let columns = load(dir)?;
    if columns.is_empty() {
        println!("no conformance reports in {}", dir.display());
    } else {
        print!("{}", render(&columns));
    }
    verdict(&columns, expected)
}

/// The `*.json` files in `dir`, sorted by name; none if `dir` does not exist.
fn report_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries.with_context(|| format!("listing {}", dir.display()))?,
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Every report in `dir`, each under its column label.
fn load(dir: &Path) -> Result<Vec<Column>> {
    report_paths(dir)?
        .iter()
        .map(|path| {
            let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let label = path.file_stem().unwrap_or_default().to_string_lossy();
            parse(&label, &text).with_context(|| format!("parsing report {}", path.display()))
        })
        .collect()
}

/// Parses one report's JSON text into a column headed `label`.
fn parse(label: &str, text: &str) -> Result<Column> {
    let report: Report = serde_json::from_str(text)?;
    let variant_of = label
        .strip_prefix(report.backend.as_str())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'));
    if !variant_of {
        bail!(
            "the report of backend `{}` is named `{label}.json`, not after it",
            report.backend
        );
    }
    Ok(Column {
        label: label.to_string(),
        report,
    })
}

/// The matrix table, then each failure's detail and each n/a's reason, then
/// the totals line.
fn render(columns: &[Column]) -> String {
    let mut header = vec!["case"];
    header.extend(columns.iter().map(|column| column.label.as_str()));
    let rows: Vec<Vec<String>> = case_rows(columns)
        .into_iter()
        .map(|(id, name)| {
            let mut row = vec![format!("{id} {name}")];
            row.extend(
                columns
                    .iter()
                    .map(|column| cell(column.report.cases.iter().find(|case| case.id == id))),
            );
            row
        })
        .collect();
    let mut out = table::render(&header, &rows);
    out.push_str(&notes(columns, Outcome::Fail, "failures"));
    out.push_str(&notes(columns, Outcome::NotApplicable, "not applicable"));
    out.push_str(&format!("\n{}\n", totals(columns)));
    out
}

/// Every case id and name found in any report, in the order first seen.
fn case_rows(columns: &[Column]) -> Vec<(&str, &str)> {
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for case in columns.iter().flat_map(|column| &column.report.cases) {
        if !rows.iter().any(|(id, _)| *id == case.id) {
            rows.push((&case.id, &case.name));
        }
    }
    rows
}

/// A matrix cell: `pass 12ms`, `FAIL`, `n/a`, or `-` for a case the report lacks.
fn cell(case: Option<&Case>) -> String {
    match case.map(|case| (case.outcome, case.millis)) {
        Some((Outcome::Pass, millis)) => format!("pass {millis}ms"),
        Some((Outcome::Fail, _)) => "FAIL".to_string(),
        Some((Outcome::NotApplicable, _)) => "n/a".to_string(),
        None => "-".to_string(),
    }
}

/// Under `heading`, one line per case with `outcome` giving its detail;
/// nothing if no case has that outcome.
fn notes(columns: &[Column], outcome: Outcome, heading: &str) -> String {
    let mut out = String::new();
    for column in columns {
        for case in column.report.cases.iter().filter(|case| case.outcome == outcome) {
            out.push_str(&format!(
                "  {} [{}] {}: {}\n",
                case.id, column.label, case.name, case.detail
            ));
        }
    }
    if out.is_empty() {
        out
    } else {
        format!("\n{heading}:\n{out}")
    }
}

/// Counts every cell of the matrix by outcome.
fn totals(columns: &[Column]) -> Totals {
    let mut totals = Totals::default();
    for case in columns.iter().flat_map(|column| &column.report.cases) {
        match case.outcome {
            Outcome::Pass => totals.passed += 1,
            Outcome::Fail => totals.failed += 1,
            Outcome::NotApplicable => totals.not_applicable += 1,
        }
    }
    totals
}

/// Fails if any case failed or a backend in `expected` wrote no report.
fn verdict(columns: &[Column], expected: &[&str]) -> Result<()> {
    let mut problems = Vec::new();
    let failed = totals(columns).failed;
    if failed > 0 {
        problems.push(format!("{failed} conformance case(s) failed"));
    }
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|label| !columns.iter().any(|column| column.label == *label))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("no conformance report for backend(s): {}", missing.join(", ")));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory report with one case of each outcome.
    const MEMORY: &str = r#"{"backend":"memory","cases":[
        {"id":"A1","name":"start fails fast","outcome":"pass","millis":12,"detail":""},
        {"id":"B5","name":"1,000 broadcasts","outcome":"fail","millis":300,"detail":"missing ids 3, 7"},
        {"id":"B11","name":"batching","outcome":"n/a","millis":0,"detail":"no batching capability"}]}"#;

    /// A variant report that passes its one case and lacks the others.
    const NATS_TLS: &str = r#"{"backend":"nats","cases":[
        {"id":"A1","name":"start fails fast","outcome":"pass","millis":40,"detail":""}]}"#;

    /// Both reports as columns, in the order `load` would give them.
    fn columns() -> Vec<Column> {
        vec![parse("memory", MEMORY).unwrap(), parse("nats-tls", NATS_TLS).unwrap()]
    }

    #[test]
    fn renders_cells_notes_and_totals() {
        let expected = "\
case                 memory     nats-tls
-------------------  ---------  ---------
A1 start fails fast  pass 12ms  pass 40ms
B5 1,000 broadcasts  FAIL       -
B11 batching         n/a        -

failures:
  B5 [memory] 1,000 broadcasts: missing ids 3, 7

not applicable:
  B11 [memory] batching: no batching capability

2 passed, 1 failed, 1 n/a
";
        assert_eq!(render(&columns()), expected);
    }

    #[test]
    fn counts_every_cell() {
        let expected = Totals {
            passed: 2,
            failed: 1,
            not_applicable: 1,
        };
        assert_eq!(totals(&columns()), expected);
    }

    #[test]
    fn verdict_names_failures_and_missing_backends() {
        let err = verdict(&columns(), &["memory", "nats-tls", "redis"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "1 conformance case(s) failed; no conformance report for backend(s): redis"
        );
        let passing = vec![parse("nats-tls", NATS_TLS).unwrap()];
        assert!(verdict(&passing, &["nats-tls"]).is_ok());
        assert!(
            verdict(&passing, &["nats"]).is_err(),
            "a variant's report is not the plain one"
        );
    }

    #[test]
    fn a_report_is_named_after_its_backend() {
        assert!(parse("memory-fast", MEMORY).is_ok());
        let err = parse("nats", MEMORY).unwrap_err();
        assert!(err.to_string().contains("named `nats.json`"), "{err}");
    }

    #[test]
    fn rejects_an_unknown_outcome() {
        let text = r#"{"backend":"memory","cases":[{"id":"A1","name":"x","outcome":"skipped"}]}"#;
        assert!(parse("memory", text).is_err());
    }

    #[test]
    fn missing_millis_and_detail_default() {
        let text = r#"{"backend":"memory","cases":[{"id":"A1","name":"x","outcome":"pass"}]}"#;
        let column = parse("memory", text).unwrap();
        assert_eq!(cell(column.report.cases.first()), "pass 0ms");
        assert_eq!(column.report.cases[0].detail, "");
    }
}
