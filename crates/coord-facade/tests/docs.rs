//! What the documentation promises about configuration, checked against the
//! code:
//!
//! - `docs/configuration.md` documents exactly the keys the configuration
//!   structs accept, table by table, and exactly the URI parameters each
//!   backend reads;
//! - every file in `docs/examples/` is a complete configuration that parses and
//!   validates and configures what its name says, and no file there is left
//!   unchecked.
//!
//! How the accepted keys are read from the code: every configuration struct
//! is `#[serde(deny_unknown_fields)]`, so a table given one unknown key fails
//! with serde's message naming every field of the struct ("unknown field
//! `x`, expected one of `a`, `b`", "expected `a` or `b`", "expected `a`",
//! "there are no fields"). Probing each documented table through
//! `Config::from_toml` that way reads the key list from the structs
//! themselves, with the names serde really uses (kebab-case, renames) and
//! the fields the enabled cargo features compile in, without a hand-kept
//! copy and without serializing the structs (most only implement
//! `Deserialize`). A map (`labels`, `address-map`, `properties`) accepts any
//! key instead, which is checked too, and so is that a key documented as a
//! plain value is not a table whose keys would escape the check. Backend URI
//! parameters are read the same way: each backend's `from_uri_parts` refuses
//! an unknown parameter with a message listing every one it takes.
//!
//! Run with the facade's default features; the Kafka parts need
//! `--features kafka`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use coord::{Config, CoordinatorConfig};

/// The key, table or parameter no configuration has.
const PROBE: &str = "coord-docs-probe";

/// The configuration reference, relative to the repository root.
const REFERENCE: &str = "docs/configuration.md";

/// The example configurations, relative to the repository root.
const EXAMPLES_DIR: &str = "docs/examples";

/// Every file of `docs/examples/`, with the facade feature its backend needs.
const EXAMPLES: &[(&str, Option<&str>)] = &[
    ("memory.toml", None),
    ("zenoh-peers.toml", Some("zenoh")),
    ("nats.toml", Some("nats")),
    ("redis-standalone.toml", Some("redis")),
    ("redis-cluster.toml", Some("redis")),
    ("redis-sentinel.toml", Some("redis")),
    ("kafka.toml", Some("kafka")),
];

/// The backend tables of `[coordinator]`: each exists only with the facade's
/// cargo feature of the same name.
const BACKEND_TABLES: [&str; 4] = ["nats", "redis", "kafka", "zenoh"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Whether this build has the facade's backend feature `feature`.
fn compiled_in(feature: &str) -> bool {
    match feature {
        "nats" => cfg!(feature = "nats"),
        "redis" => cfg!(feature = "redis"),
        "kafka" => cfg!(feature = "kafka"),
        "zenoh" => cfg!(feature = "zenoh"),
        other => panic!("`{other}` is not a backend feature of coord-facade"),
    }
}

/// What a documented key holds, from the reference's `type` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A table with keys of its own, documented under its own heading.
    Table,
    /// A table of free-form keys.
    Map,
    /// Anything else: a string, number, boolean, duration, array.
    Value,
}

/// What `docs/configuration.md` documents.
#[derive(Default)]
struct Reference {
    /// Table path (`coordinator.nats.tls`) → its keys and their kinds, from
    /// the markdown table under the heading `` `[coordinator.nats.tls]` ``.
    tables: BTreeMap<String, BTreeMap<String, Kind>>,
    /// URI scheme (`nats`) → its parameters, from the markdown table under
    /// the heading whose first code span is `` `nats://` ``.
    uri_parameters: BTreeMap<String, BTreeSet<String>>,
}

/// The part of the reference a line belongs to.
enum Section {
    Table(String),
    Uri(String),
    Other,
}

impl Reference {
    /// Parses the reference: headings name a table (`` `[path]` ``) or a URI
    /// scheme (`` `scheme://` ``) in their first code span, and the first
    /// cell of each markdown table row below is a key in backticks.
    fn parse(text: &str) -> Self {
        let mut reference = Reference::default();
        let mut section = Section::Other;
        let mut in_code = false;
        for line in text.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            if in_code {
                continue;
            }
            if line.starts_with('#') {
                section = match line.split('`').nth(1) {
                    Some(span) if span.starts_with('[') && span.ends_with(']') => {
                        let path = span.trim_matches(['[', ']']).to_owned();
                        let fresh = reference.tables.insert(path.clone(), BTreeMap::new()).is_none();
                        assert!(fresh, "{REFERENCE}: the table `[{path}]` has two headings");
                        Section::Table(path)
                    }
                    Some(span) if span.ends_with("://") => {
                        let scheme = span.trim_end_matches("://").to_owned();
                        reference.uri_parameters.entry(scheme.clone()).or_default();
                        Section::Uri(scheme)
                    }
                    _ => Section::Other,
                };
                continue;
            }
            let Some(row) = line.strip_prefix("| `") else {
                continue;
            };
            let mut cells = row.split('|');
            let name = cells.next().unwrap_or_default().trim().trim_end_matches('`');
            let kind = match cells.next().map(str::trim) {
                Some("table") => Kind::Table,
                Some("map") => Kind::Map,
                _ => Kind::Value,
            };
            match &section {
                Section::Table(path) => {
                    let keys = reference.tables.get_mut(path).expect("the heading made the table");
                    let fresh = keys.insert(name.to_owned(), kind).is_none();
                    assert!(fresh, "{REFERENCE}: `{name}` is documented twice in `[{path}]`");
                }
                Section::Uri(scheme) => {
                    let fresh = reference
                        .uri_parameters
                        .get_mut(scheme)
                        .expect("the heading made the scheme")
                        .insert(name.to_owned());
                    assert!(
                        fresh,
                        "{REFERENCE}: the `{scheme}://` parameter `{name}` is documented twice"
                    );
                }
                Section::Other => {}
            }
        }
        reference
    }

    fn load() -> Self {
        Reference::parse(&read(REFERENCE))
    }

    /// The keys documented for table `path`.
    fn table(&self, path: &str) -> &BTreeMap<String, Kind> {
        self.tables
            .get(path)
            .unwrap_or_else(|| panic!("{REFERENCE} has no heading for the table `[{path}]`"))
    }

    /// The parameters documented for `scheme`.
    fn parameters(&self, scheme: &str) -> &BTreeSet<String> {
        self.uri_parameters
            .get(scheme)
            .unwrap_or_else(|| panic!("{REFERENCE} has no heading for `{scheme}://`"))
    }
}

/// What parsing a table with one unknown key shows about it.
enum Probed {
    /// A struct: serde listed its fields.
    Fields(BTreeSet<String>),
    /// Any key is accepted: a map.
    AnyKey,
    /// Another error: not a table at all (a string, a number, …).
    NotATable(String),
}

impl Probed {
    /// What the code makes of the key, for failure messages.
    fn describe(&self) -> String {
        match self {
            Probed::Fields(fields) => format!("a table with the keys {fields:?}"),
            Probed::AnyKey => "a map of free-form keys".to_owned(),
            Probed::NotATable(error) => format!("a plain value (as a table it fails with: {error})"),
        }
    }
}

/// Gives table `path` the key [`PROBE`] and reads what the error says.
fn probe(path: &str) -> Probed {
    // The entry's key and value are valid `host:port`s, so that a map that
    // checks its entries (`address-map`) accepts it; the node id lets a map
    // pass validation. Probing `node-id` itself goes without it (the key
    // cannot be both a string and a table).
    let entry = format!("\"{PROBE}.example:1\" = \"{PROBE}.example:2\"");
    let text = match path {
        "coordinator" => format!("[coordinator]\nnode-id = \"probe\"\n{entry}\n"),
        "coordinator.node-id" => format!("[{path}]\n{entry}\n"),
        _ => format!("[coordinator]\nnode-id = \"probe\"\n\n[{path}]\n{entry}\n"),
    };
    let error = match Config::from_toml(&text) {
        Ok(_) => return Probed::AnyKey,
        Err(error) => error.message().to_owned(),
    };
    let unknown = format!("unknown field `{PROBE}.example:1`");
    let Some((_, rest)) = error.split_once(&unknown) else {
        return Probed::NotATable(error);
    };
    if rest.starts_with(", there are no fields") {
        return Probed::Fields(BTreeSet::new());
    }
    let Some((_, expected)) = rest.split_once("expected") else {
        panic!("serde's message for table `[{path}]` lists no fields: {error}");
    };
    Probed::Fields(expected.split('`').skip(1).step_by(2).map(str::to_owned).collect())
}

/// Compares table `path` and every table documented below it with the code,
/// leaving out the keys of `path` for which `skip` is true on both sides.
/// Pushes one line per difference to `problems`.
fn compare_tree(reference: &Reference, path: &str, skip: &dyn Fn(&str) -> bool, problems: &mut Vec<String>) {
    let documented = reference.table(path);
    let accepted = match probe(path) {
        Probed::Fields(accepted) => accepted,
        probed => {
            problems.push(format!("`[{path}]` is {} in the code", probed.describe()));
            return;
        }
    };
    for key in accepted.iter().filter(|key| !skip(key)) {
        if !documented.contains_key(key) {
            problems.push(format!(
                "`{path}.{key}` is accepted by the code but not documented in {REFERENCE}"
            ));
        }
    }
    for (key, kind) in documented.iter().filter(|(key, _)| !skip(key)) {
        let full = format!("{path}.{key}");
        if !accepted.contains(key) {
            problems.push(format!(
                "`{full}` is documented in {REFERENCE} but the code has no such key"
            ));
            continue;
        }
        match (kind, probe(&full)) {
            (Kind::Table, Probed::Fields(_)) => compare_tree(reference, &full, &|_| false, problems),
            (Kind::Map, Probed::AnyKey) | (Kind::Value, Probed::NotATable(_)) => {}
            (kind, probed) => problems.push(format!(
                "`{full}` is documented in {REFERENCE} as {kind:?} but the code makes it {}",
                probed.describe()
            )),
        }
    }
}

/// Asserts that table `path` and the tables below it match the reference.
fn assert_tree_documented(path: &str) {
    let mut problems = Vec::new();
    compare_tree(&Reference::load(), path, &|_| false, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The parameters named by an "unknown URI parameter … use a, b or c" error.
fn parameters_listed(error: &coord::Error) -> BTreeSet<String> {
    let message = error.message();
    assert!(
        message.contains("unknown") && message.contains(PROBE),
        "the probe parameter was not refused as unknown: {message}"
    );
    let (_, list) = message
        .rsplit_once(": use ")
        .unwrap_or_else(|| panic!("the error lists no parameters: {message}"));
    let list = list.strip_prefix("one of ").unwrap_or(list);
    list.split(", ")
        .flat_map(|item| item.split(" or "))
        .map(|item| item.trim().to_owned())
        .collect()
}

/// Asserts that the parameters `scheme://` reads are the ones documented.
fn assert_parameters_documented(scheme: &str, refused: coord::Error) {
    let reference = Reference::load();
    let documented = reference.parameters(scheme);
    let accepted = parameters_listed(&refused);
    let mut problems = Vec::new();
    for parameter in accepted.difference(documented) {
        problems.push(format!(
            "the `{scheme}://` parameter `{parameter}` is read by the code but not documented in {REFERENCE}"
        ));
    }
    for parameter in documented.difference(&accepted) {
        problems.push(format!(
            "the `{scheme}://` parameter `{parameter}` is documented in {REFERENCE} but the code does not read it"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The backend URI parameters of a probe.
fn probe_parameters() -> Vec<(String, String)> {
    vec![(PROBE.to_owned(), "1".to_owned())]
}

#[test]
fn every_coordinator_key_is_documented_and_every_documented_key_exists() {
    let reference = Reference::load();
    let Probed::Fields(accepted) = probe("coordinator") else {
        panic!("`[coordinator]` is not a table with fixed keys in the code");
    };
    let documented = reference.table("coordinator");
    for backend in BACKEND_TABLES {
        assert_eq!(
            accepted.contains(backend),
            compiled_in(backend),
            "`coordinator.{backend}` must be a key exactly when the `{backend}` feature is on"
        );
        assert_eq!(
            documented.get(backend),
            Some(&Kind::Table),
            "`coordinator.{backend}` is not documented as a table in {REFERENCE}"
        );
    }
    // The backend tables are compared by the tests below, each with its feature.
    let mut problems = Vec::new();
    compare_tree(
        &reference,
        "coordinator",
        &|key| BACKEND_TABLES.contains(&key),
        &mut problems,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_documented_table_hangs_off_a_documented_parent() {
    let reference = Reference::load();
    for path in reference.tables.keys().filter(|path| *path != "coordinator") {
        let (parent, key) = path
            .rsplit_once('.')
            .unwrap_or_else(|| panic!("{REFERENCE}: `[{path}]` is not inside `[coordinator]`"));
        let kind = reference.tables.get(parent).and_then(|keys| keys.get(key));
        assert_eq!(
            kind,
            Some(&Kind::Table),
            "{REFERENCE}: `[{path}]` has a heading, but `[{parent}]` does not document `{key}` as a table"
        );
    }
}

#[cfg(feature = "nats")]
#[test]
fn nats_keys_and_uri_parameters_are_documented() {
    assert_tree_documented("coordinator.nats");
    let refused = coord::nats::NatsConfig::from_uri_parts("127.0.0.1:4222", &probe_parameters()).unwrap_err();
    assert_parameters_documented("nats", refused);
}

#[cfg(feature = "redis")]
#[test]
fn redis_keys_and_uri_parameters_are_documented() {
    assert_tree_documented("coordinator.redis");
    let refused =
        coord::redis::RedisConfig::from_uri_parts("redis", "127.0.0.1:6379", &probe_parameters()).unwrap_err();
    assert_parameters_documented("redis", refused);
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_keys_and_uri_parameters_are_documented() {
    assert_tree_documented("coordinator.kafka");
    let refused = coord::kafka::KafkaConfig::from_uri_parts("127.0.0.1:9092", &probe_parameters()).unwrap_err();
    assert_parameters_documented("kafka", refused);
}

#[cfg(feature = "zenoh")]
#[test]
fn zenoh_keys_and_uri_parameters_are_documented() {
    assert_tree_documented("coordinator.zenoh");
    let refused = coord::zenoh::ZenohConfig::from_uri_parts("", &probe_parameters()).unwrap_err();
    assert_parameters_documented("zenoh", refused);
}

/// Checks that an example configures what its file name says, beyond
/// parsing and validating.
fn configures_what_it_says(file: &str, config: &CoordinatorConfig) -> Result<(), String> {
    let scheme = config.backend.as_ref().map(|uri| uri.scheme());
    let ok = match file {
        "memory.toml" => scheme == Some("memory"),
        #[cfg(feature = "zenoh")]
        "zenoh-peers.toml" => config.zenoh.as_ref().is_some_and(|zenoh| !zenoh.connect.is_empty()),
        #[cfg(feature = "nats")]
        "nats.toml" => config.nats.is_some(),
        #[cfg(feature = "redis")]
        "redis-standalone.toml" => config
            .redis
            .as_ref()
            .is_some_and(|redis| redis.topology == coord::redis::Topology::Standalone),
        #[cfg(feature = "redis")]
        "redis-cluster.toml" => config
            .redis
            .as_ref()
            .is_some_and(|redis| redis.topology == coord::redis::Topology::Cluster),
        #[cfg(feature = "redis")]
        "redis-sentinel.toml" => config
            .redis
            .as_ref()
            .is_some_and(|redis| redis.topology == coord::redis::Topology::Sentinel),
        #[cfg(feature = "kafka")]
        "kafka.toml" => config.kafka.is_some(),
        other => return Err(format!("no check says what {EXAMPLES_DIR}/{other} must configure")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{EXAMPLES_DIR}/{file} does not configure the backend its name says"
        ))
    }
}

#[test]
fn every_example_config_parses_validates_and_configures_its_backend() {
    let mut problems = Vec::new();
    for (file, feature) in EXAMPLES {
        if let Some(feature) = feature.filter(|feature| !compiled_in(feature)) {
            eprintln!("{EXAMPLES_DIR}/{file}: not checked, it needs coord's `{feature}` feature");
            continue;
        }
        // `from_toml` runs `Config::validate` too: everything but connecting.
        match Config::from_toml(&read(&format!("{EXAMPLES_DIR}/{file}"))) {
            Ok(config) => {
                if config.coordinator.node_id.is_none() {
                    problems.push(format!("{EXAMPLES_DIR}/{file} sets no `node-id`"));
                }
                problems.extend(configures_what_it_says(file, &config.coordinator).err());
            }
            Err(error) => problems.push(format!("{EXAMPLES_DIR}/{file}: {error}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_file_in_examples_is_checked() {
    let dir = repo_root().join(EXAMPLES_DIR);
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let listed: BTreeSet<String> = EXAMPLES.iter().map(|(file, _)| (*file).to_owned()).collect();
    let unchecked: Vec<_> = present.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&present).collect();
    assert!(
        unchecked.is_empty(),
        "{EXAMPLES_DIR}/ holds files no test checks (add them to EXAMPLES in {}): {unchecked:?}",
        file!()
    );
    assert!(
        missing.is_empty(),
        "{EXAMPLES_DIR}/ lacks the files EXAMPLES lists: {missing:?}"
    );
}
