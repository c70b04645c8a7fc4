//! The Grafana dashboard and the Prometheus alert rules of `vagrant/`,
//! checked with the real tools and against a real palisade:
//!
//! - `promtool` checks the rules and the VM's `prometheus.yml`, and runs
//!   the rules' unit tests (`alerts.test.yml`);
//! - the dashboard type-checks against Grafana's published schema: the
//!   `@grafana/schema` package's dashboard, panel-options and query types,
//!   with TypeScript's compiler (both installed by `tools/setup.sh test`);
//! - palisade runs with traffic and EC2 API requests, a real Prometheus
//!   scrapes it with `alerts.yml` loaded, and every panel query, template
//!   variable and alert expression (its threshold comparisons removed) is
//!   evaluated through Prometheus' HTTP API and must return series.
//!
//! The queries are read from the files themselves, so a panel or rule
//! added later is checked too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use palisade_dataplane::testkit::{
    FrameSpec, Payload, ROUTER_MAC, arp_request, eni_mac, flags, frame,
};
use palisade_e2e::appliance::{ChildGuard, free_local_addr, start_palisade};
use palisade_e2e::aws::{AwsCli, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use palisade_e2e::{is_root, pcap, prom};
use serde_json::Value;

/// The repository's `vagrant/` directory.
fn vagrant() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vagrant")
}

fn dashboard_path() -> PathBuf {
    vagrant().join("grafana/dashboards/palisade.json")
}

fn alerts_path() -> PathBuf {
    vagrant().join("prometheus/alerts.yml")
}

fn read_dashboard() -> Value {
    let path = dashboard_path();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Panics with how to get `tool` when it is not on `PATH`.
fn require_tool(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{tool} is missing: run tools/setup.sh test");
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool")
}

#[test]
fn promtool_checks_the_rules_and_config_and_passes_the_rules_unit_tests() {
    require_tool("promtool");
    let dir = vagrant().join("prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["check", "config", "prometheus.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let out = promtool(args, &dir);
        assert!(
            out.status.success(),
            "promtool {} ({}):\n{}",
            args.join(" "),
            out.status,
            output_text(&out)
        );
    }
}

/// The unit tests can fail: with one alert's threshold moved, `promtool
/// test rules` reports the case that no longer holds.
#[test]
fn the_rules_unit_tests_fail_when_a_threshold_is_broken() {
    require_tool("promtool");
    let dir = tempfile::tempdir().expect("temp dir");
    let source = vagrant().join("prometheus");
    let alerts = std::fs::read_to_string(source.join("alerts.yml")).expect("read alerts.yml");
    let broken = alerts.replace(
        "palisade_conntrack_allowance_available / palisade_flow_table_capacity < 0.1",
        "palisade_conntrack_allowance_available / palisade_flow_table_capacity < 0.01",
    );
    assert_ne!(alerts, broken, "the mutated expression is in alerts.yml");
    std::fs::write(dir.path().join("alerts.yml"), broken).expect("write alerts.yml");
    std::fs::copy(
        source.join("alerts.test.yml"),
        dir.path().join("alerts.test.yml"),
    )
    .expect("copy alerts.test.yml");
    let out = promtool(&["test", "rules", "alerts.test.yml"], dir.path());
    let text = output_text(&out);
    assert!(
        !out.status.success() && text.contains("PalisadeConntrackAllowanceLow"),
        "a broken threshold must fail the unit tests ({}):\n{text}",
        out.status
    );
}

// ---------------------------------------------------------------------------
// The dashboard against Grafana's published schema.

/// Where `tools/setup.sh test` installs `@grafana/schema` and TypeScript
/// unless `PALISADE_TEST_NODE` says otherwise.
const DEFAULT_NODE_DIR: &str = "/opt/palisade-test-node";

fn node_dir() -> PathBuf {
    let dir = std::env::var_os("PALISADE_TEST_NODE")
        .map_or_else(|| PathBuf::from(DEFAULT_NODE_DIR), PathBuf::from);
    for needed in [
        "node_modules/typescript/bin/tsc",
        "node_modules/@grafana/schema/package.json",
    ] {
        assert!(
            dir.join(needed).exists(),
            "{} does not exist: `tools/setup.sh test` (run by ./test.sh) installs @grafana/schema and typescript there; run it, or set PALISADE_TEST_NODE",
            dir.join(needed).display()
        );
    }
    dir
}

/// Panel types the check knows the options and field-config types of:
/// `type` → the `@grafana/schema` module name. A panel of another type
/// fails the check until it is added here.
const PANEL_SCHEMAS: &[(&str, &str)] = &[
    ("timeseries", "TimeSeriesPanelCfg"),
    ("stat", "StatPanelCfg"),
    ("table", "TablePanelCfg"),
    ("gauge", "GaugePanelCfg"),
    ("bargauge", "BarGaugePanelCfg"),
    ("text", "TextPanelCfg"),
];

/// A TypeScript module that compiles only if `dashboard` is a valid
/// Grafana dashboard: the whole JSON `satisfies` the published `Dashboard`
/// type (every key known, every required one present, every value of its
/// type), each panel's `options` and `fieldConfig.defaults.custom` satisfy
/// that panel type's published `Options` / `FieldConfig`, and each query
/// satisfies `DataQuery`. `Json<T>` turns the schema's string enums into
/// their values, which is what the JSON holds.
fn schema_check_module(dashboard: &Value) -> String {
    let mut ts = String::from("import type { Dashboard, DataQuery } from '@grafana/schema';\n");
    for (kind, module) in PANEL_SCHEMAS {
        let _ = writeln!(
            ts,
            "import type * as {kind} from '@grafana/schema/dist/esm/raw/composable/{kind}/panelcfg/x/{module}_types.gen';"
        );
    }
    ts.push_str(
        "type Json<T> = T extends string ? `${T}`\n\
         \x20 : T extends number | boolean | null | undefined ? T\n\
         \x20 : T extends ReadonlyArray<infer U> ? Array<Json<U>>\n\
         \x20 : T extends object ? { [K in keyof T]: Json<T[K]> }\n\
         \x20 : T;\n",
    );
    let literal = |v: &Value| serde_json::to_string_pretty(v).expect("JSON");
    let _ = writeln!(
        ts,
        "export const dashboard = {} satisfies Json<Dashboard>;",
        literal(dashboard)
    );
    for (i, panel) in all_panels(dashboard).into_iter().enumerate() {
        let kind = panel["type"].as_str().unwrap_or_default();
        if kind == "row" {
            continue;
        }
        assert!(
            PANEL_SCHEMAS.iter().any(|(k, _)| *k == kind),
            "panel {:?} has type {kind:?}, which the schema check does not know: add it to PANEL_SCHEMAS",
            panel["title"]
        );
        if let Some(options) = panel.get("options") {
            let _ = writeln!(
                ts,
                "export const options{i} = {} satisfies Json<{kind}.Options>;",
                literal(options)
            );
        }
        if let Some(custom) = panel.pointer("/fieldConfig/defaults/custom") {
            let _ = writeln!(
                ts,
                "export const custom{i} = {} satisfies Json<{kind}.FieldConfig>;",
                literal(custom)
            );
        }
        for (j, target) in panel["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let _ = writeln!(
                ts,
                "export const target{i}_{j} = {} satisfies Json<DataQuery> & Record<string, unknown>;",
                literal(target)
            );
        }
    }
    ts
}

/// Compiles `module` with `tsc --strict` against the installed schema;
/// Ok, or the compiler's errors.
fn type_check(module: &str) -> Result<(), String> {
    let node = node_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink(node.join("node_modules"), dir.path().join("node_modules"))
        .expect("link node_modules");
    std::fs::write(dir.path().join("dashboard.ts"), module).expect("write dashboard.ts");
    std::fs::write(
        dir.path().join("tsconfig.json"),
        r#"{"compilerOptions": {"strict": true, "noEmit": true, "module": "esnext",
            "moduleResolution": "bundler", "target": "es2022", "types": []},
            "files": ["dashboard.ts"]}"#,
    )
    .expect("write tsconfig.json");
    let out = Command::new("node")
        .arg(node.join("node_modules/typescript/bin/tsc"))
        .args(["-p", "tsconfig.json"])
        .current_dir(dir.path())
        .output()
        .expect("run node");
    if out.status.success() {
        Ok(())
    } else {
        Err(output_text(&out))
    }
}

#[test]
fn the_dashboard_satisfies_grafanas_published_schema() {
    require_tool("node");
    let dashboard = read_dashboard();
    if let Err(errors) = type_check(&schema_check_module(&dashboard)) {
        panic!(
            "{} does not match @grafana/schema:\n{errors}",
            dashboard_path().display()
        );
    }

    // The check can fail: a misspelt legend mode in the first time
    // series, and a key Grafana's dashboard does not have.
    let mut broken = dashboard.clone();
    let panel = broken["panels"]
        .as_array_mut()
        .expect("panels")
        .iter_mut()
        .find(|p| p["type"] == "timeseries")
        .expect("a timeseries panel");
    panel["options"]["legend"]["displayMode"] = Value::from("tabel");
    broken["refreshInterval"] = Value::from("10s");
    let errors = type_check(&schema_check_module(&broken))
        .expect_err("a broken dashboard must not type-check");
    assert!(
        errors.contains("\"tabel\"") && errors.contains("refreshInterval"),
        "both mistakes reported:\n{errors}"
    );
}

/// Every panel, those inside collapsed rows included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

#[test]
fn the_dashboard_uses_its_datasource_variable_and_unique_ids() {
    let dashboard = read_dashboard();
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    assert!(
        variables.iter().any(|v| v["type"] == "datasource"
            && v["name"] == "datasource"
            && v["query"] == "prometheus"),
        "a `datasource` variable of type prometheus"
    );
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for panel in all_panels(&dashboard) {
        let title = &panel["title"];
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "panel {title} reuses id {}",
            panel["id"]
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title} queries the datasource variable"
        );
        assert!(
            panel
                .pointer("/fieldConfig/defaults/unit")
                .is_some_and(Value::is_string),
            "panel {title} has a unit"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has queries");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| !e.trim().is_empty()),
                "{title}"
            );
            queries += 1;
        }
    }
    assert!(queries > 0);
}

// ---------------------------------------------------------------------------
// PromQL: Grafana's variables, and thresholds removed.

/// Replaces Grafana's variables in `text` (`$name`, `${name}`,
/// `${name:format}`, `[[name]]`) by their values; an unknown variable is
/// an error.
fn substitute(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (name, len) = if let Some(braced) = tail.strip_prefix("${") {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text}"))?;
            let inner = &braced[..end];
            (inner.split(':').next().unwrap_or(inner), end + 3)
        } else if let Some(bare) = tail.strip_prefix('$') {
            let end = bare
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(bare.len());
            (&bare[..end], end + 1)
        } else if let Some(inner) = tail.strip_prefix("[[") {
            let end = inner
                .find("]]")
                .ok_or_else(|| format!("unclosed [[ in {text}"))?;
            (&inner[..end], end + 4)
        } else {
            out.push('[');
            rest = &tail[1..];
            continue;
        };
        if name.is_empty() {
            // A `$` of PromQL itself (none exists) or a regex anchor.
            out.push('$');
            rest = &tail[1..];
            continue;
        }
        let value = values
            .get(name)
            .ok_or_else(|| format!("unknown Grafana variable {name:?} in {text}"))?;
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Grafana's built-in variables, as the test substitutes them: rate and
/// step windows long enough to hold several of the test's 1 s scrapes,
/// and a range that holds the whole run.
fn builtin_variables() -> BTreeMap<String, String> {
    [
        ("__rate_interval", "1m"),
        ("__interval", "10s"),
        ("__interval_ms", "10000"),
        ("__range", "1h"),
        ("__range_s", "3600"),
        ("__range_ms", "3600000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// One lexical step through PromQL: how deep in (), {}, [] a byte is,
/// strings and comments skipped. Calls `at(index, depth)` for every byte
/// outside strings and comments.
fn scan(expr: &str, mut at: impl FnMut(usize, i32)) {
    let bytes = expr.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'{' | b'[' => {
                at(i, depth);
                depth += 1;
            }
            b')' | b'}' | b']' => {
                depth -= 1;
                at(i, depth);
            }
            _ => at(i, depth),
        }
        i += 1;
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// Splits `expr` at its top-level binary operators of one precedence
/// level: `words` (`or`; `and`, `unless`) or `symbols` (comparisons).
fn split_top(expr: &str, words: &[&str], symbols: &[&str]) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut cuts = Vec::new(); // (start, end) of each operator
    let mut skip_until = 0;
    scan(expr, |i, depth| {
        if depth != 0 || i < skip_until {
            return;
        }
        for word in words {
            let end = i + word.len();
            if expr[i..].starts_with(word)
                && (i == 0 || !is_ident_byte(bytes[i - 1]))
                && bytes.get(end).is_none_or(|b| !is_ident_byte(*b))
            {
                cuts.push((i, end));
                skip_until = end;
                return;
            }
        }
        for symbol in symbols {
            if expr[i..].starts_with(symbol) {
                cuts.push((i, i + symbol.len()));
                skip_until = i + symbol.len();
                return;
            }
        }
    });
    let mut parts = Vec::new();
    let mut start = 0;
    for (from, to) in cuts {
        parts.push(expr[start..from].to_owned());
        start = to;
    }
    parts.push(expr[start..].to_owned());
    parts
}

/// Drops the modifiers a binary operator's right operand may start with:
/// `bool`, `on (…)`, `ignoring (…)`, `group_left (…)`, `group_right (…)`.
fn strip_modifiers(operand: &str) -> &str {
    let mut rest = operand.trim_start();
    loop {
        let before = rest;
        for word in ["bool", "on", "ignoring", "group_left", "group_right"] {
            let Some(after) = rest.strip_prefix(word) else {
                continue;
            };
            if after
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
            {
                rest = after.trim_start();
                if let Some(list) = rest.strip_prefix('(') {
                    rest = list
                        .split_once(')')
                        .map_or("", |(_, after)| after)
                        .trim_start();
                }
            }
        }
        if rest == before {
            return rest;
        }
    }
}

/// Whether `expr` is wrapped whole in one pair of parentheses.
fn wrapped(expr: &str) -> bool {
    if !(expr.starts_with('(') && expr.ends_with(')')) {
        return false;
    }
    let mut closes_early = false;
    let last = expr.len() - 1;
    scan(expr, |i, depth| {
        if depth == 0 && i < last && expr.as_bytes()[i] == b')' {
            closes_early = true;
        }
    });
    !closes_early
}

/// The expressions left of an alert once its threshold comparisons are
/// removed: set operators (`or`, `and`, `unless`) and comparisons are
/// split at, recursively; number literals (the thresholds) dropped. `a >
/// 4 * b and c > 10` gives `a`, `4 * b`, `c`.
fn without_thresholds(expr: &str) -> Vec<String> {
    let expr = expr.trim();
    if wrapped(expr) {
        return without_thresholds(&expr[1..expr.len() - 1]);
    }
    for (words, symbols) in [
        (&["or"][..], &[][..]),
        (&["and", "unless"], &[]),
        (&[], &["==", "!=", ">=", "<=", ">", "<"]),
    ] {
        let parts = split_top(expr, words, symbols);
        if parts.len() > 1 {
            return parts
                .iter()
                .flat_map(|p| without_thresholds(strip_modifiers(p)))
                .collect();
        }
    }
    if expr.parse::<f64>().is_ok() {
        Vec::new()
    } else {
        vec![expr.to_owned()]
    }
}

/// Every `palisade_…` metric name `expr` mentions.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("palisade_") {
        let boundary = at == 0 || !is_ident_byte(rest.as_bytes()[at - 1]);
        let end = rest[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(rest.len(), |e| at + e);
        if boundary {
            names.insert(rest[at..end].to_owned());
        }
        rest = &rest[end..];
    }
    names
}

#[test]
fn thresholds_are_removed_and_variables_substituted() {
    assert_eq!(
        without_thresholds(
            "(sum by (a) (rate(x[5m])) > 4 * sum by (a) (rate(x[1h]))) and sum by (a) (rate(x{c!=\"1\"}[5m])) > 10"
        ),
        [
            "sum by (a) (rate(x[5m]))",
            "4 * sum by (a) (rate(x[1h]))",
            "sum by (a) (rate(x{c!=\"1\"}[5m]))"
        ]
    );
    assert_eq!(
        without_thresholds(
            "(a or b * 0) / c > 0.05 and on (instance) group_left () sum by (instance) (d) > 0.01"
        ),
        ["(a or b * 0) / c", "sum by (instance) (d)"]
    );
    assert_eq!(
        without_thresholds("g - on (job, instance) group_right () w > 0"),
        ["g - on (job, instance) group_right () w"]
    );
    assert_eq!(
        without_thresholds("up{job=\"p\"} == bool 0"),
        ["up{job=\"p\"}"]
    );
    assert_eq!(without_thresholds("x unless y"), ["x", "y"]);
    assert_eq!(without_thresholds("order_total"), ["order_total"]);

    let mut values = builtin_variables();
    values.insert("instance".to_owned(), "(a|b)".to_owned());
    assert_eq!(
        substitute(
            "rate(x{instance=~\"$instance\", i=~\"${instance:regex}\", j=~\"[[instance]]\"}[$__rate_interval]) [${__range}]",
            &values
        )
        .unwrap(),
        "rate(x{instance=~\"(a|b)\", i=~\"(a|b)\", j=~\"(a|b)\"}[1m]) [1h]"
    );
    assert!(substitute("x{a=~\"$nope\"}", &values).is_err());
    assert_eq!(regex_value("127.0.0.1:9400"), r"127\\.0\\.0\\.1:9400");
    assert_eq!(regex_value(r"a\b(c)"), r"a\\\\b\\(c\\)");
    assert_eq!(
        metric_names(
            "sum(rate(palisade_a_total[1m])) / palisade_b{x=\"palisade_c\"} + my_palisade_d"
        ),
        BTreeSet::from([
            "palisade_a_total".to_owned(),
            "palisade_b".to_owned(),
            "palisade_c".to_owned()
        ])
    );
}

// ---------------------------------------------------------------------------
// The live run.

/// The traffic: one port, replayed without end (`infinite_rx`) so that
/// every rate has something to measure while Prometheus scrapes. Two
/// ENIs: `a` in group `web`, `b` in group `db`, which admits TCP 5432
/// from `web`. The input mixes an ARP request for the gateway (answered),
/// a connection `db` allows, one it denies, and a spoofed source (dropped).
fn write_world(dir: &Path, prefix: &str) -> PathBuf {
    let profile = dir.join("profile.toml");
    std::fs::write(
        &profile,
        format!(
            "workers = [1]\n\n[eal]\nlcores = [0, 1]\nmain_lcore = 0\nfile_prefix = \"{prefix}\"\n\n\
             [eal.memory]\nmode = \"no-huge\"\nmemory_mb = 128\n\n[mempool]\nmbufs = 2047\ncache = 64\n\n\
             [[ports]]\nname = \"p0\"\nvdev = \"net_pcap0,rx_pcap={rx},tx_pcap=/dev/null,infinite_rx=1\"\n\
             rx_descriptors = 256\ntx_descriptors = 256\n",
            rx = dir.join("in.pcap").display(),
        ),
    )
    .expect("write the profile");
    let config = dir.join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[appliance]\nprofile = \"{}\"\nstate_dir = \"{}\"\napi_listen = \"127.0.0.1:0\"\ndefault_vpc = false\n\
             access_key_id = \"{TEST_ACCESS_KEY_ID}\"\nsecret_access_key = \"{TEST_SECRET_ACCESS_KEY}\"\n\n\
             [[vpc]]\nname = \"v\"\ncidr = \"10.0.0.0/16\"\n\n\
             [[subnet]]\nname = \"s\"\nvpc = \"v\"\ncidr = \"10.0.1.0/24\"\n\n\
             [[security_group]]\nname = \"web\"\nvpc = \"v\"\n\n\
             [[security_group]]\nname = \"db\"\nvpc = \"v\"\n\
             [[security_group.ingress]]\nprotocol = \"tcp\"\nfrom_port = 5432\nto_port = 5432\ngroup = \"web\"\n\n\
             [[eni]]\nname = \"a\"\nsubnet = \"s\"\nport = \"p0\"\nmac = \"02:00:00:00:00:00\"\nips = [\"10.0.1.10\"]\n\
             groups = [\"web\"]\n\n\
             [[eni]]\nname = \"b\"\nsubnet = \"s\"\nport = \"p0\"\nmac = \"02:00:00:00:00:01\"\nips = [\"10.0.1.20\"]\n\
             groups = [\"db\"]\n",
            profile.display(),
            dir.join("var").display()
        ),
    )
    .expect("write the config");
    let a: IpAddr = "10.0.1.10".parse().expect("address");
    let b: IpAddr = "10.0.1.20".parse().expect("address");
    let spoofed: IpAddr = "10.0.1.99".parse().expect("address");
    let syn = |src_port, dst_port| Payload::Tcp {
        src_port,
        dst_port,
        flags: flags::SYN,
    };
    let frames = vec![
        arp_request(
            eni_mac(0),
            None,
            "10.0.1.10".parse().expect("address"),
            "10.0.1.1".parse().expect("address"),
        ),
        frame(&FrameSpec::new(
            eni_mac(0),
            ROUTER_MAC,
            a,
            b,
            syn(40000, 5432),
        )),
        frame(&FrameSpec::new(
            eni_mac(0),
            ROUTER_MAC,
            a,
            b,
            syn(40001, 22),
        )),
        frame(&FrameSpec::new(
            eni_mac(0),
            ROUTER_MAC,
            spoofed,
            b,
            syn(40002, 5432),
        )),
    ];
    pcap::write(&dir.join("in.pcap"), &frames).expect("write the input");
    config
}

/// Removes DPDK's runtime directory for the test's file prefix.
struct RuntimeDir(PathBuf);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Percent-encodes a query-string value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `GET path` from Prometheus' API: its `data`, or why not.
fn api(prometheus: SocketAddr, path: &str) -> Result<Value, String> {
    let response =
        prom::http_get(prometheus, path, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let json: Value = serde_json::from_str(&response.body)
        .map_err(|e| format!("{path}: not JSON ({e}): {}", response.body))?;
    if response.status != 200 || json["status"] != "success" {
        return Err(format!("{path}: {} {}", response.status, response.body));
    }
    Ok(json["data"].clone())
}

/// The series a PromQL expression returns.
fn series(prometheus: SocketAddr, promql: &str, range: bool) -> Result<usize, String> {
    evaluate(prometheus, promql, range).map(|(series, _)| series)
}

/// Evaluates a PromQL expression: an instant query, or a range query
/// over the last minute for a panel's range query. Gives how many series
/// it returns, and how many of those have a finite value (a ratio of two
/// zero rates, or a quantile of an idle histogram, is NaN).
fn evaluate(prometheus: SocketAddr, promql: &str, range: bool) -> Result<(usize, usize), String> {
    let path = if range {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        format!(
            "/api/v1/query_range?query={}&start={}&end={now}&step=5",
            encode(promql),
            now - 60
        )
    } else {
        format!("/api/v1/query?query={}", encode(promql))
    };
    let data = api(prometheus, &path)?;
    let finite = |v: &Value| {
        v[1].as_str()
            .and_then(|x| x.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    match &data["result"] {
        Value::Array(result) => Ok((
            result.len(),
            result
                .iter()
                .filter(|s| {
                    finite(&s["value"]) || s["values"].as_array().into_iter().flatten().any(finite)
                })
                .count(),
        )),
        // A scalar or a string is one value, not a series.
        _ => Err(format!("{promql}: not a vector or matrix: {data}")),
    }
}

/// The value to substitute for a query variable: every value of its
/// `label_values(selector, label)` (or `label_values(label)`), as Grafana
/// formats a multi-value variable for Prometheus (`(a|b)`, regex-escaped).
fn variable_value(
    prometheus: SocketAddr,
    variable: &Value,
    known: &BTreeMap<String, String>,
) -> Result<String, String> {
    let name = variable["name"].as_str().unwrap_or_default();
    let query = match &variable["query"] {
        Value::String(q) => q.clone(),
        q => q["query"].as_str().unwrap_or_default().to_owned(),
    };
    let query = substitute(&query, known)?;
    let args = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|a| a.strip_suffix(')'))
        .ok_or_else(|| {
            format!("variable {name}: only label_values(…) queries are checked: {query}")
        })?;
    let (selector, label) = match args.rsplit_once(',') {
        Some((selector, label)) => (Some(selector.trim()), label.trim()),
        None => (None, args.trim()),
    };
    let path = match selector {
        Some(selector) => format!("/api/v1/label/{label}/values?match[]={}", encode(selector)),
        None => format!("/api/v1/label/{label}/values"),
    };
    let data = api(prometheus, &path)?;
    let values: Vec<String> = data
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .map(regex_value)
        .collect();
    if values.is_empty() {
        return Err(format!("variable {name}: {query} has no values"));
    }
    Ok(format!("({})", values.join("|")))
}

/// A label value as Grafana's Prometheus datasource puts it in a regex
/// matcher's string: regex metacharacters escaped with a backslash, which
/// the PromQL string itself escapes again (`.` → `\\.`).
fn regex_value(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\\\"),
            c if ".+*?()|[]{}^$'".contains(c) => {
                out.push_str(r"\\");
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The EC2 API address palisade printed.
fn api_endpoint(palisade: &ChildGuard) -> String {
    let stdout = palisade.stdout();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("palisade: EC2 API on "))
        .expect("palisade prints its EC2 API address");
    line.split_whitespace()
        .next()
        .expect("the address")
        .trim_end_matches('/')
        .to_owned()
}

#[test]
fn every_dashboard_query_and_alert_expression_returns_series_from_a_live_palisade() {
    if !is_root() {
        eprintln!("skip: the dashboard test runs palisade's data plane, which needs root");
        return;
    }
    require_tool("prometheus");
    let dashboard = read_dashboard();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("pal-dash-{}", std::process::id());
    let _runtime = RuntimeDir(Path::new("/var/run/dpdk").join(&prefix));
    let config = write_world(dir.path(), &prefix);
    let metrics = free_local_addr();
    let mut palisade =
        start_palisade(&config, metrics, Duration::from_secs(30)).expect("palisade starts");
    palisade
        .wait_for("to forward, deny and drop", Duration::from_secs(15), |_| {
            let samples = prom::scrape(metrics).ok()?;
            let forwarded = prom::sum(&samples, "palisade_worker_forwarded_total", &[])?;
            let replied = prom::sum(&samples, "palisade_worker_replied_total", &[])?;
            let denied = prom::sum(&samples, "palisade_security_group_flows_denied_total", &[])?;
            let spoofed = prom::sum(&samples, "palisade_drops_total", &[("reason", "spoofed")])?;
            (forwarded > 0.0 && replied > 0.0 && denied > 0.0 && spoofed > 0.0).then_some(())
        })
        .expect("palisade processes its input");

    // Prometheus as in the VM, job `palisade`, with the VM's rules, but
    // scraping and evaluating every second.
    let web = free_local_addr();
    let prometheus_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: palisade\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
             \x20   static_configs:\n      - targets: ['{metrics}']\n",
            rules = alerts_path().display()
        ),
    )
    .expect("write prometheus.yml");
    let mut prometheus = ChildGuard::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .arg("--log.level=warn"),
    )
    .expect("start prometheus");
    prometheus
        .wait_for("to scrape palisade", Duration::from_secs(30), |_| {
            (series(web, "up{job=\"palisade\"} == 1", false).ok()? == 1).then_some(())
        })
        .expect("prometheus scrapes palisade");

    // EC2 API traffic: unsigned requests (an error code), signed ones,
    // one of which changes the policy (a publication). Each kind twice,
    // scrapes apart, so that its counter is seen to rise (a series is
    // born at its first request).
    let endpoint = api_endpoint(&palisade);
    let api_addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("the API address");
    let unsigned = || {
        let answer = prom::http_get(
            api_addr,
            "/?Action=DescribeVpcs&Version=2016-11-15",
            Duration::from_secs(5),
        )
        .expect("the API answers");
        assert!(
            answer.status >= 400,
            "unsigned request refused: {}",
            answer.body
        );
    };
    unsigned();
    let aws = AwsCli::new(&endpoint, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
    let vpc = aws.text(&["ec2", "describe-vpcs", "--query", "Vpcs[0].VpcId"]);
    aws.text(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "observed",
        "--description",
        "dashboard test",
        "--vpc-id",
        &vpc,
    ]);
    unsigned();
    aws.text(&["ec2", "describe-vpcs", "--query", "Vpcs[0].VpcId"]);
    prometheus
        .wait_for(
            "the API requests and the publication",
            Duration::from_secs(30),
            |_| {
                let codes =
                    series(web, "count by (code) (palisade_api_requests_total)", false).ok()?;
                let published = series(web, "palisade_policy_generation >= 2", false).ok()?;
                (codes >= 2 && published == 1).then_some(())
            },
        )
        .expect("prometheus sees the API requests");
    // A few more scrapes, so that every rate window holds the change.
    std::thread::sleep(Duration::from_secs(3));

    let names: BTreeSet<String> = api(web, "/api/v1/label/__name__/values")
        .expect("metric names")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut failures = Vec::new();
    // Series, but only NaN values: reported, not failed (the run is too
    // short and quiet for every ratio to have a denominator).
    let mut not_finite = Vec::new();
    let mut checked = 0;
    let check_names = |what: &str, expr: &str, failures: &mut Vec<String>| {
        for name in metric_names(expr) {
            if !names.contains(&name) {
                failures.push(format!("{what}: no metric {name} is scraped"));
            }
        }
    };

    // Template variables, in order (later ones use earlier ones).
    let mut values = builtin_variables();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().expect("variable name").to_owned();
        checked += 1;
        check_names(
            &format!("variable {name}"),
            &variable["query"].to_string(),
            &mut failures,
        );
        match variable_value(web, variable, &values) {
            Ok(value) => {
                values.insert(name, value);
            }
            Err(e) => {
                failures.push(e);
                values.insert(name, ".*".to_owned());
            }
        }
    }

    // Every panel query.
    for panel in all_panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let what = format!("panel {title:?} query {}", target["refId"]);
            checked += 1;
            check_names(&what, expr, &mut failures);
            let promql = match substitute(expr, &values) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{what}: {e}"));
                    continue;
                }
            };
            let range = target["instant"] != true;
            match evaluate(web, &promql, range) {
                Ok((0, _)) => failures.push(format!("{what} returns no series: {promql}")),
                Ok((_, 0)) => not_finite.push(what),
                Ok(_) => {}
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
    }

    // Every alert rule, as Prometheus loaded it from alerts.yml.
    let rules_text = std::fs::read_to_string(alerts_path()).expect("read alerts.yml");
    let in_file = rules_text
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    let deadline = Instant::now() + Duration::from_secs(30);
    let alerts = loop {
        let groups = api(web, "/api/v1/rules").expect("rules");
        let alerts: Vec<Value> = groups["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["type"] == "alerting")
            .collect();
        // Every rule evaluated at least once since the API traffic.
        if alerts.iter().all(|r| r["health"] != "unknown") || Instant::now() > deadline {
            break alerts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        alerts.len(),
        in_file,
        "Prometheus loaded every alert of alerts.yml"
    );
    for rule in &alerts {
        let name = rule["name"].as_str().unwrap_or_default();
        let what = format!("alert {name}");
        if rule["health"] != "ok" {
            failures.push(format!(
                "{what}: health {} {}",
                rule["health"], rule["lastError"]
            ));
        }
        if rule["duration"].as_f64().is_none_or(|d| d <= 0.0) {
            failures.push(format!("{what}: no `for:`"));
        }
        if !matches!(
            rule["labels"]["severity"].as_str(),
            Some("warning" | "critical")
        ) {
            failures.push(format!("{what}: severity is not warning or critical"));
        }
        for annotation in ["summary", "description"] {
            if rule["annotations"][annotation]
                .as_str()
                .is_none_or(str::is_empty)
            {
                failures.push(format!("{what}: no {annotation} annotation"));
            }
        }
        let query = rule["query"].as_str().expect("the rule's query");
        check_names(&what, query, &mut failures);
        let parts = without_thresholds(query);
        if parts.is_empty() {
            failures.push(format!("{what}: nothing left without thresholds: {query}"));
        }
        for part in parts {
            checked += 1;
            match evaluate(web, &part, false) {
                Ok((0, _)) => failures.push(format!("{what}: {part} returns no series")),
                Ok((_, 0)) => not_finite.push(format!("{what}: {part}")),
                Ok(_) => {}
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
    }
    eprintln!(
        "checked {checked} queries against the live palisade; {} return series of NaN only:\n{}",
        not_finite.len(),
        not_finite.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of the dashboard's and alerts' queries fail:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let stopped = prometheus
        .stop("TERM", Duration::from_secs(15))
        .expect("prometheus stops");
    assert!(stopped.status.success(), "prometheus: {}", stopped.stderr);
    let finished = palisade
        .stop("TERM", Duration::from_secs(15))
        .expect("palisade stops");
    assert!(
        finished.status.success(),
        "palisade: {}\n{}",
        finished.stdout,
        finished.stderr
    );
}
