//! `posbridge doctor`: what a technician checks at a counter, each check ok / warn / fail /
//! skip with one line of detail and, when not ok, one line saying how to fix it.
//!
//! The checks only look: they read files, ask the daemon over its socket (`status`, `devices`),
//! read /proc and /dev, ask BlueZ through `busctl`, and open connections to the configured
//! backends without sending them anything that moves money. They never change anything.
//! Exit code 0 when nothing failed (warnings and skips allowed), 1 when any check failed.

mod backends;
mod devices;
mod host;
mod local;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::DoctorArgs;
use crate::config::Config;
use crate::paths;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Could not be checked here (nothing to check, or the means are missing); never an error.
    Skip,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Stable, dotted: `socket`, `journal`, `backend.phonepe.tls`, `device.reader-1`, ...
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do about it, one line; only when the status is warn or fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, detail, None::<String>)
    }
    pub fn skip(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Skip, detail, None::<String>)
    }
    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(name, Status::Warn, detail, Some(fix))
    }
    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(name, Status::Fail, detail, Some(fix))
    }
    fn new(
        name: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
        fix: Option<impl Into<String>>,
    ) -> Check {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: fix.map(Into::into),
        }
    }
}

/// What the checks share: where things are, and what the daemon said (if it answered).
pub struct Context {
    pub config: Option<Config>,
    pub config_path: Option<PathBuf>,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// The `data` of the daemon's `status` answer.
    pub status: Option<Value>,
    /// The daemon's `devices` answer: `Ok(list)`, or `Err(why not)` when it did not give one.
    pub devices: Result<Vec<Value>, String>,
    pub timeout: Duration,
}

/// Runs every check, in the order a technician would look.
pub fn run(args: &DoctorArgs) -> Vec<Check> {
    let mut checks = Vec::new();
    let config_path = paths::config_file(args.paths.config.clone());
    let config = match &config_path {
        None => {
            checks.push(Check::ok(
                "config",
                "no config file: the embedded defaults (sim provider only)",
            ));
            Some(Config::default())
        }
        Some(path) => match Config::load(path) {
            Ok(c) => {
                checks.push(Check::ok("config", format!("{} is valid", path.display())));
                Some(c)
            }
            Err(e) => {
                checks.push(Check::fail(
                    "config",
                    e.to_string(),
                    format!(
                        "correct it, then `posbridge config check {}`",
                        path.display()
                    ),
                ));
                None
            }
        },
    };
    let socket = paths::client_socket(
        args.paths.socket.clone(),
        config.as_ref().and_then(|c| c.api.socket.clone()),
    );
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (socket_checks, status) = local::socket(&socket, config.as_ref(), timeout);
    checks.extend(socket_checks);
    // The daemon knows where its journal is; otherwise the same defaults as the daemon.
    let state_dir = match (&args.paths.state_dir, status.as_ref()) {
        (Some(dir), _) => dir.clone(),
        (None, Some(s)) => s["journal"]["path"]
            .as_str()
            .and_then(|p| std::path::Path::new(p).parent().map(PathBuf::from))
            .unwrap_or_else(|| paths::state_dir(None)),
        (None, None) => paths::state_dir(None),
    };
    let devices = match &status {
        Some(_) => devices::ask(&socket, timeout),
        None => Err("the daemon did not answer".into()),
    };
    let cx = Context {
        config,
        config_path,
        socket,
        state_dir,
        status,
        devices,
        timeout,
    };
    checks.extend(local::state_dir(&cx));
    checks.push(local::journal(&cx));
    checks.push(local::journal_writes(&cx));
    checks.push(local::manual_checks(&cx));
    checks.extend(devices::checks(&cx));
    checks.extend(backends::checks(&cx));
    checks
}

/// 0 when no check failed, 1 otherwise.
pub fn exit_code(checks: &[Check]) -> i32 {
    i32::from(checks.iter().any(|c| c.status == Status::Fail))
}

pub fn to_json(checks: &[Check]) -> Value {
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    json!({
        "ok": exit_code(checks) == 0,
        "summary": {
            "ok": count(Status::Ok),
            "warn": count(Status::Warn),
            "fail": count(Status::Fail),
            "skip": count(Status::Skip),
        },
        "checks": checks,
    })
}

/// One line per check, its fix indented under it.
pub fn to_text(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        out.push_str(&format!("{tag}  {:<width$}  {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    out.push_str(&match (failed, warned) {
        (0, 0) => "all checks passed\n".to_owned(),
        (0, w) => format!("no failures, {w} warning(s)\n"),
        (f, w) => format!("{f} check(s) failed, {w} warning(s)\n"),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_fail_means_exit_1_and_warnings_do_not() {
        let mut checks = vec![
            Check::ok("a", "fine"),
            Check::warn("b", "meh", "do x"),
            Check::skip("c", "nothing here"),
        ];
        assert_eq!(exit_code(&checks), 0);
        assert_eq!(to_json(&checks)["ok"], true);
        checks.push(Check::fail("d", "broken", "do y"));
        assert_eq!(exit_code(&checks), 1);
        let j = to_json(&checks);
        assert_eq!(j["summary"]["fail"], 1);
        assert_eq!(j["checks"][3]["fix"], "do y");
        assert!(j["checks"][0].get("fix").is_none());
        let text = to_text(&checks);
        assert!(
            text.contains("FAIL  d  broken") && text.contains("fix: do y"),
            "{text}"
        );
    }
}
