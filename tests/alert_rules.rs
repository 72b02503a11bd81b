//! The alerting rules shipped in packaging/prometheus/ (issue 10, "Also"): they pass their own
//! `promtool test rules` cases (alerts that must fire, and cases next to them that must not),
//! and every metric they name is one the real daemon exports, so that renaming a metric
//! breaks this test rather than an alert in a shop.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::scrape::{metrics_addr, names, scrape};
use common::Daemon;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/prometheus");
const RULES: &str = "posbridge-alerts.yml";
const CASES: &str = "posbridge-alerts.test.yml";

/// Debian's `prometheus` package ships promtool (.ci/deps installs it).
fn promtool() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("promtool"))
        .find(|p| p.is_file())
}

fn run(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(DIR)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_rules_pass_their_promtool_tests() {
    let Some(promtool) = promtool() else {
        return common::skip::cannot_run(
            "promtool is not installed (apt-get install prometheus; .ci/deps does)",
        );
    };
    run(&promtool, &["check", "rules", RULES]);
    run(&promtool, &["test", "rules", CASES]);
}

/// Every `posbridge_*` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("posbridge_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        out.push(name);
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_metric_the_rules_name_is_one_the_daemon_exports() {
    let d = Daemon::start_with(Some("[metrics]\nlisten = \"127.0.0.1:0\"\n"), &[]);
    let exported = names(&scrape(metrics_addr(&d)));
    for file in [RULES, CASES] {
        let text = std::fs::read_to_string(Path::new(DIR).join(file)).unwrap();
        let used = metric_names(&text);
        assert!(used.len() >= 5, "{file} names {used:?}");
        let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the daemon does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
}
