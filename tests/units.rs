//! The systemd units agree with the code they run: the socket path clients find by default,
//! the credential names the providers read, the stop timeout against the daemon's own, the
//! user the sysusers file makes, the serial ports udev names and the device cgroup lets
//! through. (`systemd/check` verifies the units with systemd-analyze; this is what it cannot.)

use std::collections::BTreeSet;

const SERVICE: &str = include_str!("../systemd/posbridge.service");
const SOCKET: &str = include_str!("../systemd/posbridge.socket");
const SYSUSERS: &str = include_str!("../systemd/posbridge.sysusers");
const TMPFILES: &str = include_str!("../systemd/posbridge.tmpfiles");
const RULES: &str = include_str!("../udev/70-posbridge.rules");
const PATHS: &str = include_str!("../src/paths.rs");
const CONFIG: &str = include_str!("../src/config.rs");
/// The `[providers.*]` sections, where the secrets are.
const PROVIDERS_CONFIG: &str = include_str!("../src/config/providers.rs");

/// Every value of `key=` in a unit file, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn one<'a>(unit: &'a str, key: &str) -> &'a str {
    match values(unit, key).as_slice() {
        [v] => v,
        other => panic!("{key}: expected one value, found {other:?}"),
    }
}

#[test]
fn the_socket_is_where_clients_look_and_only_for_the_posbridge_group() {
    let path = one(SOCKET, "ListenStream");
    assert_eq!(path, "/run/posbridge/api.sock");
    assert!(
        PATHS.contains(&format!("\"{path}\"")),
        "src/paths.rs default differs"
    );
    assert_eq!(one(SOCKET, "SocketMode"), "0660");
    assert_eq!(one(SOCKET, "SocketGroup"), "posbridge");
    assert_eq!(one(SOCKET, "SocketUser"), "posbridge");
    assert_eq!(one(SERVICE, "RuntimeDirectory"), "posbridge");
    assert_eq!(
        one(SERVICE, "RuntimeDirectoryPreserve"),
        "yes",
        "the socket outlives restarts"
    );
    assert!(TMPFILES.contains("d /run/posbridge      0750 posbridge posbridge"));
}

#[test]
fn the_service_is_a_watched_notify_daemon_given_time_to_finish_its_operations() {
    assert_eq!(one(SERVICE, "Type"), "notify");
    assert_eq!(one(SERVICE, "ExecStart"), "/usr/bin/posbridge daemon");
    // `systemctl reload`: SIGHUP re-reads the configuration (src/daemon/reload.rs).
    assert_eq!(one(SERVICE, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(one(SERVICE, "Restart"), "on-failure");
    assert!(one(SERVICE, "WatchdogSec").ends_with('s'));
    let stop: u64 = one(SERVICE, "TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(
        CONFIG.contains("shutdown_timeout_ms: 30_000"),
        "the daemon's default shutdown timeout changed: adjust TimeoutStopSec"
    );
    assert!(
        stop > 30,
        "systemd must wait longer than the daemon's own 30 s"
    );
    assert_eq!(one(SERVICE, "Requires"), "posbridge.socket");
}

#[test]
fn every_secret_the_config_can_take_from_a_file_is_loaded_as_a_credential() {
    let loaded: BTreeSet<&str> = values(SERVICE, "LoadCredential").into_iter().collect();
    // `salt_key_file: Option<PathBuf>` and the like: the secret's name is the credential's.
    let secrets: BTreeSet<&str> = PROVIDERS_CONFIG
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split_once("_file: Option<PathBuf>"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(secrets.len(), 4, "{secrets:?}");
    assert_eq!(loaded, secrets);
}

#[test]
fn the_user_and_groups_the_service_runs_with_are_made_by_sysusers() {
    let user = one(SERVICE, "User");
    assert!(SYSUSERS
        .lines()
        .any(|l| l.starts_with(&format!("u {user} "))));
    for group in one(SERVICE, "SupplementaryGroups").split_whitespace() {
        // dialout is in every Debian base system; the others must be made.
        assert!(
            group == "dialout"
                || SYSUSERS
                    .lines()
                    .any(|l| l.starts_with(&format!("g {group} "))),
            "{group} may not exist: the service would not start"
        );
    }
}

#[test]
fn the_ports_udev_names_are_the_ports_the_device_cgroup_allows() {
    let allowed: BTreeSet<&str> = values(SERVICE, "DeviceAllow")
        .into_iter()
        .map(|v| {
            v.strip_prefix("char-")
                .unwrap()
                .strip_suffix(" rw")
                .unwrap()
        })
        .collect();
    let kernel = RULES
        .lines()
        .find_map(|l| l.strip_prefix(r#"SUBSYSTEM=="tty", KERNEL==""#))
        .unwrap();
    let named: BTreeSet<&str> = kernel
        .split('"')
        .next()
        .unwrap()
        .split('|')
        .map(|k| k.trim_end_matches("[0-9]*"))
        .collect();
    assert_eq!(allowed, named);
    assert_eq!(one(SERVICE, "DevicePolicy"), "closed");
}

/// A crash loop stops at the unit's start limits: the restarts of one minute (a start takes
/// about a second, then RestartSec=) must reach StartLimitBurst within StartLimitIntervalSec.
/// With systemd's defaults (5 in 10 s) and RestartSec=2s they never did: hil/vm saw 21 starts
/// in 60 s.
#[test]
fn a_crash_loop_reaches_the_start_limit() {
    let secs = |v: &str| -> u64 {
        v.strip_suffix('s')
            .unwrap_or(v)
            .parse()
            .unwrap_or_else(|_| panic!("{v}: not seconds"))
    };
    let burst: u64 = one(SERVICE, "StartLimitBurst").parse().unwrap();
    let interval = secs(one(SERVICE, "StartLimitIntervalSec"));
    let restart = secs(one(SERVICE, "RestartSec"));
    // A failing start under a slow machine: up to 3 s before it exits.
    assert!(
        burst * (restart + 3) <= interval,
        "{burst} starts of {restart}+3 s do not fit in {interval} s: the loop would never stop"
    );
}
