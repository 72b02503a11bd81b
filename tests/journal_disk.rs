//! The journal's disk faults (issue 11 §1 and §2), injected into the real binary: a state
//! directory on a small tmpfs that fills up, an ext4 image that goes read-only under the
//! daemon (errors=remount-ro), and EIO on fsync or write of the journal's WAL from an
//! LD_PRELOAD shim (tests/fixtures/fault_shim.c, built here with `cc`). The rule: never
//! acknowledge what is not durable, never lose what was acknowledged, say what is wrong, and
//! work again when the fault goes (a full disk: at once; an I/O error: after a restart, which
//! the stopped watchdog makes systemd do). Mounting needs root: without it (or when a mount
//! fails) those tests fail on CI and say SKIPPED elsewhere (common::skip).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{json_of, Daemon};
use serde_json::{json, Value};

/// A file system mounted for one test, lazily unmounted when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Mounts with `args` on `at`, or says why not (not root, mount not permitted).
fn mount(args: &[&str], at: &Path) -> Result<Mount, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: mounting a test file system needs root (CI runs as root)".into());
    }
    run(Command::new("mount").args(args).arg(at))?;
    Ok(Mount(at.to_owned()))
}

macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => return common::skip::cannot_run(&why),
        }
    };
}

/// The daemon restarted with its state directory on a fresh `fs` mount (tmpfs or ext4).
fn daemon_on(mount_args: &[&str], env: &[(&str, &str)]) -> Result<(Daemon, Mount), String> {
    let mut d = Daemon::start_with(None, env);
    d.terminate();
    let m = mount(mount_args, &d.state)?;
    d.restart();
    Ok((d, m))
}

fn pay(d: &Daemon, id: &str, amount: u64) -> Value {
    d.request(json!({"action": "pay", "request_id": id, "amount": amount}))
}

/// A pay that takes `ms` in the sim, sent from another thread; returns once the backend has it.
fn running_pay(d: &Daemon, id: &str, ms: u64) -> std::thread::JoinHandle<std::process::Output> {
    let delay = format!("delay_ms={ms}");
    let t = d.cli_in_thread(&[
        "pay",
        "--amount",
        "700",
        "--request-id",
        id,
        "--param",
        &delay,
        "--json",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.sim_calls(id) == 0 {
        assert!(Instant::now() < deadline, "{id} never reached the sim");
        std::thread::sleep(Duration::from_millis(10));
    }
    t
}

/// Writes a file in `dir` until the file system says ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [65536usize, 4096, 512] {
        let buf = vec![0x5au8; chunk];
        while f.write_all(&buf).and_then(|_| f.sync_data()).is_ok() {}
    }
    path
}

fn status(d: &Daemon) -> Value {
    let v = d.request(json!({"action": "status"}));
    assert_eq!(v["code"], 0, "{v}");
    v["data"]["journal"].clone()
}

#[test]
fn a_full_disk_refuses_new_sales_keeps_answers_and_recovers_when_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let env = [
        ("NOTIFY_SOCKET", notify.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
    ];
    let tmpfs = ["-t", "tmpfs", "-o", "size=4m", "tmpfs"];
    let (d, _m) = or_skip!(daemon_on(&tmpfs, &env));
    assert_eq!(pay(&d, "df-ok", 100)["code"], 0);
    let running = running_pay(&d, "df-run", 1500);
    let filler = fill(&d.state);

    let v = pay(&d, "df-new", 300);
    assert_ne!(v["code"], 0, "approved without its record: {v}");
    assert_eq!(v["reason"], "journal_unavailable", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("disk is full"), "{msg}");
    assert!(msg.contains(&d.state.display().to_string()), "{msg}");
    assert_eq!(d.sim_calls("df-new"), 0, "refused before anything was sent");

    let v = json_of(&running.join().unwrap());
    assert_eq!(
        v["error_type"], "unknown_result_error",
        "a running sale whose outcome could not be recorded is unknown, never approved: {v}"
    );
    let v = d.request(json!({"action": "get_result", "request_id": "df-ok"}));
    assert_eq!(v["code"], 0, "answers from what is on disk: {v}");

    let j = status(&d);
    assert_eq!(j["writable"], false, "{j}");
    assert_eq!(j["last_error"]["kind"], "disk_full", "{j}");
    assert!(j["free_bytes"].as_u64().unwrap() < 64 * 1024, "{j}");
    // Alive and honest: the watchdog is fed (a restart would not make space), and the status
    // line says what is wrong.
    let full = |l: &String| l.contains("journal writes failing: the disk is full");
    let lines = notifications_until(&sock, Duration::from_secs(60), |ls| {
        // A ping after the status said so: the watchdog is still fed in this state.
        ls.iter()
            .position(full)
            .is_some_and(|at| ls[at..].iter().any(|l| l == "WATCHDOG=1"))
    });
    let at = lines.iter().position(full);
    assert!(
        at.is_some(),
        "STATUS never said the disk is full: {lines:?}"
    );
    assert!(
        lines[at.unwrap()..].iter().any(|l| l == "WATCHDOG=1"),
        "no WATCHDOG=1 after it: {lines:?}"
    );
    let report = json_of(&d.cli(&["doctor", "--json"]));
    let check = common::doctor_check(&report, "journal.writes");
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("disk is full"),
        "{check}"
    );

    // Space comes back: sales work again, no restart.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(pay(&d, "df-after", 400)["code"], 0);
    let v = d.await_result("df-run", Duration::from_secs(20), |v| v["code"] == 0);
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(d.sim_calls("df-run"), 1);
    assert_eq!(status(&d)["writable"], true);
    // STATUS clears: a STATUS line without "failing" comes (event, not a window).
    let clear = |l: &String| l.starts_with("STATUS=") && !l.contains("failing");
    let lines = notifications_until(&sock, Duration::from_secs(60), |ls| ls.iter().any(clear));
    assert!(lines.iter().any(clear), "STATUS never cleared: {lines:?}");
    println!("disk full: refused, recovered without a restart");
}

#[test]
fn a_daemon_started_on_a_full_disk_refuses_saying_so_and_starts_once_space_is_back() {
    let tmpfs = ["-t", "tmpfs", "-o", "size=4m", "tmpfs"];
    let (mut d, _m) = or_skip!(daemon_on(&tmpfs, &[]));
    assert_eq!(pay(&d, "fs-ok", 100)["code"], 0);
    d.terminate();
    let filler = fill(&d.state);
    // Never READY on a disk it cannot write: it exits, saying why (systemd retries it).
    let out = d.command().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the disk is full"), "{err}");
    assert!(err.contains(&d.state.display().to_string()), "{err}");
    std::fs::remove_file(filler).unwrap();
    d.restart();
    let v = d.request(json!({"action": "get_result", "request_id": "fs-ok"}));
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(pay(&d, "fs-after", 400)["code"], 0);
}

#[test]
fn a_file_system_gone_read_only_stops_acknowledging_and_recovers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("state.ext4");
    let made = run(Command::new("truncate").arg("-s16M").arg(&image))
        .and_then(|_| run(Command::new("mkfs.ext4").arg("-q").arg(&image)));
    or_skip!(made);
    let img = image.to_str().unwrap();
    let (mut d, m) = or_skip!(daemon_on(&["-o", "loop,errors=remount-ro", img], &[]));
    assert_eq!(pay(&d, "ro-ok", 100)["code"], 0);
    let running = running_pay(&d, "ro-run", 1000);

    // What ext4 does on a real error: remount read-only under the daemon's open files.
    let out = Command::new("findmnt")
        .args(["-no", "SOURCE"])
        .arg(&d.state)
        .output()
        .unwrap();
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let name = Path::new(&dev).file_name().unwrap().to_string_lossy();
    let trigger = format!("/sys/fs/ext4/{name}/trigger_fs_error");
    or_skip!(std::fs::write(&trigger, "posbridge test\n").map_err(|e| format!("{trigger}: {e}")));

    let v = json_of(&running.join().unwrap());
    assert_ne!(v["code"], 0, "approved without its record: {v}");
    let v = pay(&d, "ro-new", 300);
    assert_ne!(v["code"], 0, "{v}");
    assert_eq!(v["reason"], "journal_unavailable", "{v}");
    let v = d.request(json!({"action": "get_result", "request_id": "ro-ok"}));
    assert_eq!(v["code"], 0, "keeps what it knew: {v}");
    let j = status(&d);
    assert!(j["stopped"].is_string(), "{j}");
    assert_eq!(j["last_error"]["kind"], "io_error", "{j}");

    // The watchdog is not fed (see the fsync test): systemd kills and restarts it.
    d.kill9();
    drop(m);
    let _m = or_skip!(mount(&["-o", "loop", img], &d.state));
    d.restart();
    let v = d.await_result("ro-run", Duration::from_secs(20), |v| {
        v["error_type"] != "unknown_result_error"
    });
    // The sim "backend" keeps its ledger on the same file system, and ext4 dropped what it
    // had not yet written when it went read-only: the truth is whatever the ledger says now.
    // Either way the answer matches it, and the sale was never sent twice.
    match d.sim_calls("ro-run") {
        1 => assert_eq!(v["data"]["status"], "approved", "{v}"),
        0 => assert_eq!(v["reason"], "not_processed", "{v}"),
        n => panic!("ro-run sent {n} times"),
    }
    assert_eq!(d.sim_calls("ro-new"), 0, "refused before anything was sent");
    assert_eq!(pay(&d, "ro-after", 400)["code"], 0);
}

/// tests/fixtures/fault_shim.c, built into `dir`.
fn shim(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fault_shim.c");
    let out = dir.join("fault_shim.so");
    run(Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl"))
    .unwrap_or_else(|e| panic!("building the fault shim needs a C compiler (.ci/deps): {e}"));
    out
}

/// Environment that makes the daemon fail `op` ("fsync" or "write") on its WAL, once, from
/// the moment `arm` exists.
fn fault_env(shim: &Path, op: &str, arm: &Path) -> Vec<(String, String)> {
    [
        ("LD_PRELOAD", shim.to_str().unwrap()),
        ("POSBRIDGE_FAULT_OP", op),
        ("POSBRIDGE_FAULT_SUFFIX", "journal.sqlite-wal"),
        ("POSBRIDGE_FAULT_ARM_FILE", arm.to_str().unwrap()),
        ("POSBRIDGE_FAULT_NTH", "1"),
        ("POSBRIDGE_FAULT_COUNT", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Every sd_notify line that arrives within `span`.
fn notifications(sock: &UnixDatagram, span: Duration) -> Vec<String> {
    let end = Instant::now() + span;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            out.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    out
}

/// sd_notify lines until `done` says enough has come, or `limit` (generous: a bound for a
/// daemon that never sends, not a speed requirement) has passed; the caller asserts on them.
fn notifications_until(
    sock: &UnixDatagram,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&out) && Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            out.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    out
}

#[test]
fn a_failed_fsync_of_an_outcome_is_never_answered_approved_and_stops_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let arm = dir.path().join("arm");
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut env = fault_env(&shim(dir.path()), "fsync", &arm);
    env.push(("NOTIFY_SOCKET".into(), notify.to_str().unwrap().into()));
    env.push(("WATCHDOG_USEC".into(), "200000".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut d = Daemon::start_with(None, &env);

    assert_eq!(pay(&d, "io-ok", 100)["code"], 0);
    let before = notifications_until(&sock, Duration::from_secs(60), |ls| {
        ls.iter().any(|l| l == "WATCHDOG=1")
    });
    assert!(before.iter().any(|l| l == "WATCHDOG=1"), "{before:?}");

    // The outcome's commit is the next fsync of the WAL: it fails.
    let running = running_pay(&d, "io-run", 500);
    std::fs::write(&arm, "").unwrap();
    let v = json_of(&running.join().unwrap());
    assert_ne!(
        v["code"], 0,
        "approved, but its record never reached the disk: {v}"
    );
    assert_eq!(v["error_type"], "unknown_result_error", "{v}");
    assert!(d.log().contains("fault_shim: EIO on fsync"), "{}", d.log());

    // From now on nothing is acknowledged, and systemd is told so by silence.
    // Until STATUS says why (an event), then 1.5 s more in which no ping may follow it (the
    // socket keeps the daemon's order; a slow machine can only send fewer pings, so this
    // window cannot fail for slowness).
    let stopped = |l: &String| l.contains("journal stopped");
    let mut after =
        notifications_until(&sock, Duration::from_secs(60), |ls| ls.iter().any(stopped));
    let at = after.iter().position(stopped);
    assert!(at.is_some(), "STATUS says why: {after:?}");
    after.extend(notifications(&sock, Duration::from_millis(1500)));
    assert!(
        !after[at.unwrap()..].iter().any(|l| l == "WATCHDOG=1"),
        "{after:?}"
    );
    let v = pay(&d, "io-new", 300);
    assert_ne!(v["code"], 0, "acknowledged after a failed fsync: {v}");
    assert_eq!(v["reason"], "journal_unavailable", "{v}");
    assert_eq!(d.sim_calls("io-new"), 0, "refused before anything was sent");
    let v = d.request(json!({"action": "get_result", "request_id": "io-ok"}));
    assert_eq!(v["code"], 0, "keeps what it knew: {v}");
    assert!(status(&d)["stopped"].is_string());

    // systemd's watchdog kills it; it starts again and recovers as after a crash.
    std::fs::remove_file(&arm).unwrap();
    d.kill9();
    d.restart();
    let v = d.await_result("io-run", Duration::from_secs(20), |v| v["code"] == 0);
    assert_eq!(v["data"]["status"], "approved", "{v}");
    assert_eq!(d.sim_calls("io-run"), 1, "reconciled, never re-sent");
    assert_eq!(pay(&d, "io-after", 400)["code"], 0);
}

#[test]
fn a_failed_write_of_an_intent_refuses_the_sale_and_every_later_one_until_restart() {
    let dir = tempfile::tempdir().unwrap();
    let arm = dir.path().join("arm");
    let env = fault_env(&shim(dir.path()), "write", &arm);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut d = Daemon::start_with(None, &env);
    assert_eq!(pay(&d, "w-ok", 100)["code"], 0);

    std::fs::write(&arm, "").unwrap();
    let v = pay(&d, "w-new", 300);
    assert_eq!(v["reason"], "journal_unavailable", "{v}");
    assert!(v["message"].as_str().unwrap().contains("I/O error"), "{v}");
    assert_eq!(d.sim_calls("w-new"), 0, "refused before anything was sent");
    // Only one write failed, but nothing since the last good commit is trusted.
    std::fs::remove_file(&arm).unwrap();
    let v = pay(&d, "w-later", 300);
    assert_ne!(v["code"], 0, "acknowledged after an I/O error: {v}");
    assert_eq!(d.sim_calls("w-later"), 0);

    d.kill9();
    d.restart();
    assert_eq!(pay(&d, "w-after", 400)["code"], 0);
    let v = d.request(json!({"action": "get_result", "request_id": "w-ok"}));
    assert_eq!(v["code"], 0, "{v}");
}
