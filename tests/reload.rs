//! `systemctl reload posbridge` (SIGHUP), against the real binary over its real socket
//! (issue 19 item 5): a rotated PhonePe salt key and index take effect for the next sale; a
//! sale running across the reload finishes on the provider it started with; the socket and
//! its connections stay open; a bad file is refused, logged with the reason, and the old
//! configuration stays in force; RELOADING=1 (with MONOTONIC_USEC) then READY=1 and a STATUS
//! reach the service manager.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use common::replica::Replica;
use common::{Client, Daemon};
use serde_json::{json, Value};

const OLD_SALT: &str = "pp-salt-old-1111";
const NEW_SALT: &str = "pp-salt-new-2222";

/// A `[providers.phonepe]` config against `url`, its salt key in `salt_file` under `index`.
fn phonepe_config(url: &str, salt_file: &Path, index: u32) -> String {
    format!(
        "default_provider = \"phonepe\"\n\
         [providers.phonepe]\n\
         base_url = {url:?}\n\
         merchant_id = \"MERCH1\"\nstore_id = \"STORE1\"\nterminal_id = \"TERM1\"\n\
         provider_id = \"PROV1\"\n\
         salt_key_file = {:?}\nsalt_index = {index}\n\
         timeout_ms = 30000\nrequest_timeout_ms = 2000\nstatus_poll_ms = [100]\n",
        salt_file.display().to_string()
    )
}

/// Writes `text` over the daemon's config file (the daemon reads it only on SIGHUP).
fn rewrite(d: &Daemon, text: &str) {
    std::fs::write(d.config.as_ref().expect("a config file"), text).unwrap();
}

/// The log lines that end a reload, done or refused.
fn reload_lines(d: &Daemon) -> Vec<String> {
    d.log()
        .lines()
        .filter(|l| l.contains("reloaded ") || l.contains("reload refused"))
        .map(str::to_owned)
        .collect()
}

/// SIGHUP, then the log line that ends this reload (20 s: a bound for a daemon that never
/// reloads, not a speed requirement).
fn reload(d: &Daemon) -> String {
    let before = reload_lines(d).len();
    d.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(line) = reload_lines(d).get(before) {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no reload within 20 s:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pay(d: &Daemon, id: &str) -> Value {
    d.request(json!({"action": "pay", "request_id": id, "amount": 1000}))
}

/// How many of the replica's transactions came from `request_id` (its orderId, as the client
/// maps it: `-` becomes `_`).
fn replica_has(replica: &Replica, request_id: &str) -> bool {
    let order = request_id.replace('-', "_");
    replica.state()["transactions"]
        .as_object()
        .is_some_and(|all| {
            all.values()
                .any(|t| t["payload"]["orderId"] == order.as_str())
        })
}

#[test]
fn a_rotated_salt_key_and_index_take_effect_for_the_next_sale() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("phonepe-replica.json");
    let salt = dir.path().join("salt_key");
    std::fs::write(&salt, format!("{OLD_SALT}\n")).unwrap();
    let mut replica = Replica::start_at(&state, "127.0.0.1:0", "phonepe", OLD_SALT, &[]);
    let addr = replica.addr().to_owned();
    let d = Daemon::start_with(Some(&phonepe_config(&replica.url, &salt, 1)), &[]);
    let a = pay(&d, "before-rotation");
    assert_eq!(a["code"], 0, "{a}");

    // PhonePe rotates: the backend now wants salt key 2 under index 2.
    replica.kill();
    let replica = Replica::start_at(&state, &addr, "phonepe", NEW_SALT, &[("salt_index", "2")]);
    let a = pay(&d, "old-key-after-rotation");
    assert_ne!(
        a["code"], 0,
        "the rotated backend still took the old key: {a}"
    );

    std::fs::write(&salt, format!("{NEW_SALT}\n")).unwrap();
    rewrite(&d, &phonepe_config(&replica.url, &salt, 2));
    let line = reload(&d);
    assert!(line.contains("reloaded"), "{line}");
    let a = pay(&d, "new-key");
    assert_eq!(a["code"], 0, "the reloaded key was not used: {a}");
    assert!(replica_has(&replica, "new-key"));
    let log = d.log();
    assert!(
        !log.contains(OLD_SALT) && !log.contains(NEW_SALT),
        "a salt key is in the log"
    );
}

#[test]
fn a_sale_running_across_a_reload_finishes_on_its_provider_and_the_socket_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let old_salt = dir.path().join("old_salt");
    let new_salt = dir.path().join("new_salt");
    std::fs::write(&old_salt, OLD_SALT).unwrap();
    std::fs::write(&new_salt, NEW_SALT).unwrap();
    // The old backend's customer takes 5 s to pay; the new one is another account.
    let old = Replica::start(dir.path(), "phonepe", OLD_SALT, &[("pay_after_ms", "5000")]);
    let new_dir = tempfile::tempdir().unwrap();
    let new = Replica::start(new_dir.path(), "phonepe", NEW_SALT, &[("salt_index", "2")]);
    let d = Daemon::start_with(Some(&phonepe_config(&old.url, &old_salt, 1)), &[]);
    let socket_inode = std::fs::metadata(&d.socket).unwrap().ino();
    let mut idle = Client::connect(&d.socket).unwrap();
    let running = common::send_in_thread(
        &d,
        json!({"action": "pay", "request_id": "running-sale", "amount": 1000}),
    );
    d.wait_in_flight(1, "the running sale");

    rewrite(&d, &phonepe_config(&new.url, &new_salt, 2));
    let line = reload(&d);
    assert!(line.contains("reloaded"), "{line}");

    // A connection opened before SIGHUP is answered after it, on the same socket file.
    let status = idle.request(&json!({"action": "status"}));
    assert_eq!(status["code"], 0, "{status}");
    assert_eq!(
        std::fs::metadata(&d.socket).unwrap().ino(),
        socket_inode,
        "the socket was replaced"
    );
    let a = pay(&d, "after-reload");
    assert_eq!(a["code"], 0, "{a}");
    assert!(replica_has(&new, "after-reload") && !replica_has(&old, "after-reload"));

    let answer = running.join().unwrap().expect("the running sale's answer");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["code"], 0, "{answer}");
    assert_eq!(answer["data"]["status"], "approved", "{answer}");
    assert!(replica_has(&old, "running-sale") && !replica_has(&new, "running-sale"));
}

#[test]
fn a_bad_file_is_refused_with_its_reason_and_the_old_configuration_stays() {
    let d = Daemon::start_with(Some("[providers.sim]\ncurrency = \"EUR\"\n"), &[]);
    // Not a file that loads: the reason names the key.
    rewrite(&d, "default_provider = \"phonepe\"\n");
    let line = reload(&d);
    assert!(
        line.contains("reload refused") && line.contains("default_provider"),
        "{line}"
    );
    assert!(
        line.contains("previous configuration stays in force"),
        "{line}"
    );
    // A file that loads but whose secret cannot be read is refused too.
    let missing = d.dir.path().join("no-such-salt");
    rewrite(&d, &phonepe_config("http://127.0.0.1:9", &missing, 1));
    let line = reload(&d);
    assert!(
        line.contains("reload refused") && line.contains("providers.phonepe.salt_key"),
        "{line}"
    );
    let status = d.request(json!({"action": "status"}));
    assert_eq!(status["code"], 0, "{status}");
    assert_eq!(status["data"]["default_provider"], "sim", "{status}");
    assert_eq!(
        status["data"]["providers"][0]["currency"], "EUR",
        "{status}"
    );
    let a = pay(&d, "on-the-old-config");
    assert_eq!(a["code"], 0, "{a}");
    assert_eq!(a["data"]["provider"], "sim", "{a}");
}

#[test]
fn settings_a_reload_cannot_change_are_named_as_waiting_for_a_restart() {
    let d = Daemon::start_with(Some("[api]\nmax_connections = 8\n"), &[]);
    rewrite(
        &d,
        "[api]\nmax_connections = 9\n[journal]\ncapacity = 600\n[providers.sim]\ncurrency = \"EUR\"\n",
    );
    let line = reload(&d);
    assert!(line.contains("reloaded"), "{line}");
    let log = d.log();
    for key in ["api.max_connections", "journal.capacity"] {
        assert!(
            log.contains(&format!("{key} changed")) && log.contains("next restart"),
            "{key}: {log}"
        );
    }
    let status = d.request(json!({"action": "status"}));
    assert_eq!(status["data"]["journal"]["capacity"], 500, "{status}");
    // What a reload can change did change: the sim's currency.
    let sim = &status["data"]["providers"][0];
    assert_eq!(sim["currency"], "EUR", "{status}");
}

/// Every datagram on `sock` until `done` holds or 30 s pass, one Vec of lines per datagram.
fn notifications(sock: &UnixDatagram, done: impl Fn(&[Vec<String>]) -> bool) -> Vec<Vec<String>> {
    common::collect_until(sock, Duration::from_secs(30), done)
}

/// The STATUS= of the first READY=1 after the first RELOADING=1 in `msgs`.
fn ready_after_reloading(msgs: &[Vec<String>]) -> Option<String> {
    let reloading = msgs
        .iter()
        .position(|m| m.iter().any(|l| l == "RELOADING=1"))?;
    msgs[reloading..]
        .iter()
        .find(|m| m.iter().any(|l| l == "READY=1"))?
        .iter()
        .find_map(|l| l.strip_prefix("STATUS=").map(str::to_owned))
}

#[test]
fn reloading_then_ready_with_a_status_reach_the_service_manager() {
    let notify_dir = tempfile::tempdir().unwrap();
    let path = notify_dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let path = path.to_str().unwrap();
    let d = Daemon::start_with(
        Some("[providers.sim]\ntimeout_ms = 20000\n"),
        &[("NOTIFY_SOCKET", path), ("WATCHDOG_USEC", "200000")],
    );
    notifications(&sock, |m| {
        m.iter().any(|m| m.iter().any(|l| l == "READY=1"))
    });

    d.signal(libc::SIGHUP);
    let msgs = notifications(&sock, |m| ready_after_reloading(m).is_some());
    let reloading = msgs
        .iter()
        .find(|m| m.iter().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1: {msgs:?}"));
    assert!(
        reloading.iter().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|v| v > 0))),
        "RELOADING=1 without MONOTONIC_USEC: {reloading:?}"
    );
    let status = ready_after_reloading(&msgs).unwrap();
    assert!(status.contains("reloaded"), "{status}");

    rewrite(&d, "no_such_key = 1\n");
    d.signal(libc::SIGHUP);
    let msgs = notifications(&sock, |m| ready_after_reloading(m).is_some());
    let status = ready_after_reloading(&msgs).unwrap_or_else(|| panic!("{msgs:?}"));
    assert!(
        status.contains("reload refused") && status.contains("no_such_key"),
        "{status}"
    );
    // STATUS goes on saying so on the watchdog's ticks.
    let msgs = notifications(&sock, |m| {
        m.iter().any(|m| m.iter().any(|l| l == "WATCHDOG=1"))
            && m.iter().flatten().any(|l| l.starts_with("STATUS="))
    });
    let last = msgs
        .iter()
        .flatten()
        .filter_map(|l| l.strip_prefix("STATUS="))
        .next_back()
        .unwrap_or_else(|| panic!("no STATUS after the refusal: {msgs:?}"));
    assert!(last.contains("last reload refused"), "{last}");
}

#[test]
fn config_check_with_secrets_is_the_dry_run_of_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let salt = dir.path().join("salt_key");
    let path = dir.path().join("posbridge.toml");
    std::fs::write(&path, phonepe_config("http://127.0.0.1:9", &salt, 1)).unwrap();
    let check = |secrets: bool| {
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.args(["config", "check"]).arg(&path);
        if secrets {
            cmd.arg("--secrets");
        }
        cmd.env_remove("CREDENTIALS_DIRECTORY").output().unwrap()
    };
    // The file's rules alone pass; reading its secret, as a reload would, does not.
    assert_eq!(check(false).status.code(), Some(0));
    let out = check(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("providers.phonepe.salt_key") && stderr.contains("reload would be refused"),
        "{stderr}"
    );
    std::fs::write(&salt, OLD_SALT).unwrap();
    let out = check(true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("providers.phonepe.salt_key: readable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("wait for a restart") && !stdout.contains(OLD_SALT),
        "{stdout}"
    );
}

#[test]
fn a_provider_section_added_or_removed_takes_effect_for_the_next_sale() {
    let dir = tempfile::tempdir().unwrap();
    let salt = dir.path().join("salt_key");
    std::fs::write(&salt, OLD_SALT).unwrap();
    let replica = Replica::start(dir.path(), "phonepe", OLD_SALT, &[]);
    let sim_only = "[providers.sim]\ncurrency = \"INR\"\n";
    let d = Daemon::start_with(Some(sim_only), &[]);
    let phonepe_pay = |id: &str| {
        d.request(json!({"action": "pay", "request_id": id, "amount": 1000, "provider": "phonepe"}))
    };
    let a = phonepe_pay("before-the-section");
    assert_eq!(a["reason"], "provider_unavailable", "{a}");

    // The section comes (default_provider stays sim: the file says nothing of it).
    let with_phonepe =
        phonepe_config(&replica.url, &salt, 1).replace("default_provider = \"phonepe\"\n", "");
    rewrite(&d, &with_phonepe);
    let line = reload(&d);
    assert!(
        line.contains("providers phonepe, sim, default sim"),
        "{line}"
    );
    let a = phonepe_pay("with-the-section");
    assert_eq!(a["code"], 0, "{a}");
    assert!(replica_has(&replica, "with-the-section"));

    // And goes.
    rewrite(&d, sim_only);
    reload(&d);
    let a = phonepe_pay("after-the-section");
    assert_eq!(a["reason"], "provider_unavailable", "{a}");
    let status = d.request(json!({"action": "status"}));
    assert_eq!(
        status["data"]["providers"].as_array().unwrap().len(),
        1,
        "{status}"
    );
}
