//! Plain-text tables with aligned columns, for the step summary and the
//! conformance matrix.

/// Renders `header` and `rows` as left-aligned columns two spaces apart, with
/// a dashed rule under the header; every line ends in a newline.
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    let mut widths: Vec<usize> = header.iter().map(|cell| width(cell)).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            widths[column] = widths[column].max(width(cell));
        }
    }
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    let mut out = String::new();
    for row in [&header, &rule].into_iter().chain(rows) {
        out.push_str(&line(row, &widths));
    }
    out
}

/// One row padded to `widths`, trailing spaces removed, with a newline.
fn line(row: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = row
        .iter()
        .zip(widths)
        .map(|(cell, &width)| format!("{cell:<width$}"))
        .collect();
    format!("{}\n", padded.join("  ").trim_end())
}

/// The width of `cell` in characters, as `format!` counts them when padding.
fn width(cell: &str) -> usize {
    cell.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_under_a_rule() {
        let rows = vec![
            vec!["a".to_string(), "ok".to_string()],
            vec!["longer".to_string(), "FAILED".to_string()],
        ];
        let expected = "\
step    result
------  ------
a       ok
longer  FAILED
";
        assert_eq!(render(&["step", "result"], &rows), expected);
    }
}
