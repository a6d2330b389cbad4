//! `coordctl members`: the membership view as a table.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Args;
use coord::{Member, MemberState};

use crate::observer;

/// The options of `coordctl members`.
#[derive(Debug, Args)]
pub(crate) struct MembersArgs {
    /// The TOML config file of the cluster.
    #[arg(long, short)]
    config: std::path::PathBuf,
    /// How long to listen before printing: every live node heartbeats
    /// within its interval, so the default of 3 s hears nodes of both profiles.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    listen: Duration,
    /// One JSON object per member instead of a table.
    #[arg(long)]
    json: bool,
}

/// Joins as an observer, listens, prints the view and leaves.
pub(crate) async fn run(args: MembersArgs) -> Result<()> {
    let config = observer::as_observer(observer::load(&args.config)?, "members")?;
    let coordinator = observer::join(&config).await?;
    tokio::time::sleep(args.listen).await;
    let members = coordinator.members();
    coordinator.shutdown().await?;
    if args.json {
        for member in &members {
            println!("{}", member_json(member));
        }
    } else {
        print!("{}", table(&members, SystemTime::now()));
    }
    Ok(())
}

fn member_json(member: &Member) -> serde_json::Value {
    serde_json::json!({
        "node": member.node.as_str(),
        "state": state_name(member.state),
        "incarnation": member.incarnation,
        "last-seen-ms-ago": SystemTime::now().duration_since(member.last_seen).map_or(0, |d| d.as_millis() as u64),
        "phi": member.phi,
        "version": member.meta.version,
        "roles": member.meta.roles,
        "addresses": member.meta.addresses,
        "labels": member.meta.labels,
    })
}

fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Alive => "alive",
        MemberState::Suspect => "suspect",
        MemberState::Failed => "failed",
        MemberState::Left => "left",
    }
}

/// The view as an aligned text table, one member per line.
fn table(members: &[Member], now: SystemTime) -> String {
    render(members.iter().map(|member| row(member, now)).collect())
}

/// One member's cells, in the order of [`HEADER`].
fn row(member: &Member, now: SystemTime) -> [String; 7] {
    let ago = now.duration_since(member.last_seen).unwrap_or_default();
    [
        member.node.as_str().to_owned(),
        state_name(member.state).to_owned(),
        format!("{} ms ago", ago.as_millis()),
        format!("{:.2}", member.phi),
        member.meta.version.clone(),
        member.meta.roles.join(","),
        member.incarnation.to_string(),
    ]
}

/// The table's columns.
const HEADER: [&str; 7] = ["node", "state", "last seen", "phi", "version", "roles", "incarnation"];

/// Rows sorted by node and aligned under [`HEADER`].
fn render(mut rows: Vec<[String; 7]>) -> String {
    rows.sort();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(HEADER);
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    if rows.is_empty() {
        out.push_str("(no node heard: is the cluster running with this config's backend and namespace?)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(node: &str, state: &str) -> [String; 7] {
        [node, state, "40 ms ago", "0.50", "1.2", "imap", "7"].map(str::to_owned)
    }

    #[test]
    fn the_table_is_aligned_sorted_and_says_when_empty() {
        let text = render(vec![cells("mx2", "failed"), cells("mx1", "alive")]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("node  state   last seen  "), "{text}");
        assert!(lines[1].starts_with("mx1   alive   40 ms ago  "), "{text}");
        assert!(lines[2].starts_with("mx2   failed  40 ms ago  "), "{text}");
        assert!(render(Vec::new()).contains("no node heard"));
    }
}
