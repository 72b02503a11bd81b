//! systemd integration (DESIGN.md §6): `Type=notify` (READY only after recovery, STATUS,
//! WATCHDOG pings, STOPPING) and socket activation, against the real binary. The service
//! manager's side is played by a datagram socket and by `systemd-socket-activate`.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Daemon, BIN};
use serde_json::json;

/// The notification socket a service manager would listen on.
fn notify_socket(dir: &Path) -> (UnixDatagram, String) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    (sock, path.to_str().unwrap().to_owned())
}

/// Every notification that arrives within `span`, one Vec of `KEY=VALUE` lines per datagram.
fn collect(sock: &UnixDatagram, span: Duration) -> Vec<Vec<String>> {
    common::collect_until(sock, span, |_| false)
}

/// Whether READY=1 has come and, after it, at least 3 WATCHDOG=1 and 2 STATUS lines.
fn ready_and_ticking(msgs: &[Vec<String>]) -> bool {
    let Some(ready) = msgs.iter().position(|m| has(m, "READY=1")) else {
        return false;
    };
    let after = &msgs[ready + 1..];
    after.iter().filter(|m| has(m, "WATCHDOG=1")).count() >= 3
        && after
            .iter()
            .flatten()
            .filter(|l| l.starts_with("STATUS="))
            .count()
            >= 2
}

fn has(msg: &[String], line: &str) -> bool {
    msg.iter().any(|l| l == line)
}

/// Restarts `d` the way systemd runs a `Type=notify` service with `WatchdogSec=`:
/// NOTIFY_SOCKET, WATCHDOG_USEC, and WATCHDOG_PID = the daemon's own pid (a shell sets it to
/// `$$` and execs the daemon in place, keeping that pid).
fn restart_managed(d: &mut Daemon, notify: &str, watchdog_usec: &str) {
    assert_eq!(d.terminate().code(), Some(0));
    let base = d.command();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"export WATCHDOG_PID=$$; exec "$0" "$@""#)
        .arg(base.get_program())
        .args(base.get_args());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", watchdog_usec)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.dir.path().join("managed.log")).unwrap());
    d.child = Some(cmd.spawn().expect("start the daemon"));
    d.wait_ready();
}

/// Checks READY, STATUS and WATCHDOG in what a manager received after start, until READY and
/// then 3 pings and 2 STATUS updates had come (no rate asserted: a loaded machine is slow).
fn check_notifications(msgs: &[Vec<String>]) {
    let ready = msgs
        .iter()
        .position(|m| has(m, "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {msgs:?}"));
    for m in &msgs[..ready] {
        assert!(
            m.iter().all(|l| l.starts_with("STATUS=")),
            "before READY only STATUS may come: {msgs:?}"
        );
    }
    assert!(
        msgs[ready].iter().any(|l| l.starts_with("STATUS=ready")),
        "READY carries a STATUS: {:?}",
        msgs[ready]
    );
    let readies = msgs.iter().filter(|m| has(m, "READY=1")).count();
    assert_eq!(readies, 1, "{msgs:?}");
    let after = &msgs[ready + 1..];
    let pings = after.iter().filter(|m| has(m, "WATCHDOG=1")).count();
    assert!(
        pings >= 3,
        "{pings} WATCHDOG=1 (200 ms period) within 60 s: {msgs:?}"
    );
    let statuses = after
        .iter()
        .flatten()
        .filter(|l| l.starts_with("STATUS="))
        .count();
    assert!(statuses >= 2, "STATUS is updated on each tick: {msgs:?}");
}

/// SIGTERM: exit 0 and STOPPING=1 (with a STATUS) reaches the manager.
fn check_stopping(d: &mut Daemon, sock: &UnixDatagram) {
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    // The daemon has exited: what it sent is in the socket already; read until STOPPING.
    let last = common::collect_until(sock, Duration::from_secs(10), |m| {
        m.iter().any(|m| has(m, "STOPPING=1"))
    });
    let stopping = last
        .iter()
        .find(|m| has(m, "STOPPING=1"))
        .unwrap_or_else(|| panic!("no STOPPING=1 after SIGTERM: {last:?}"));
    assert!(
        stopping.iter().any(|l| l.starts_with("STATUS=stopping")),
        "{stopping:?}"
    );
}

#[test]
fn ready_status_watchdog_and_stopping_are_notified_as_under_systemd() {
    let mut d = Daemon::start();
    let (sock, path) = notify_socket(d.dir.path());
    restart_managed(&mut d, &path, "200000");
    check_notifications(&common::collect_until(
        &sock,
        Duration::from_secs(60),
        ready_and_ticking,
    ));
    check_stopping(&mut d, &sock);
}

#[test]
fn watchdog_usec_without_watchdog_pid_enables_the_watchdog() {
    let nd = tempfile::tempdir().unwrap();
    let (sock, path) = notify_socket(nd.path());
    let env = [
        ("NOTIFY_SOCKET", path.as_str()),
        ("WATCHDOG_USEC", "200000"),
    ];
    let mut d = Daemon::start_with(None, &env);
    check_notifications(&common::collect_until(
        &sock,
        Duration::from_secs(60),
        ready_and_ticking,
    ));
    check_stopping(&mut d, &sock);
}

#[test]
fn no_watchdog_pings_unless_the_watchdog_is_meant_for_this_process() {
    let nd = tempfile::tempdir().unwrap();
    let (sock, path) = notify_socket(nd.path());
    let cases: [&[(&str, &str)]; 2] = [
        &[("NOTIFY_SOCKET", &path)],
        // Another process (pid 1) is the one being watched.
        &[
            ("NOTIFY_SOCKET", &path),
            ("WATCHDOG_USEC", "200000"),
            ("WATCHDOG_PID", "1"),
        ],
    ];
    for env in cases {
        let mut d = Daemon::start_with(None, env);
        // Until READY (bounded generously), then a second more in which no ping may come
        // (a slow machine can only send fewer: it cannot make this fail).
        let mut msgs = common::collect_until(&sock, Duration::from_secs(60), |m| {
            m.iter().any(|m| has(m, "READY=1"))
        });
        msgs.extend(collect(&sock, Duration::from_secs(1)));
        assert!(msgs.iter().any(|m| has(m, "READY=1")), "{env:?}: {msgs:?}");
        assert!(
            !msgs.iter().any(|m| has(m, "WATCHDOG=1")),
            "{env:?}: {msgs:?}"
        );
        check_stopping(&mut d, &sock);
    }
}

#[test]
fn ready_comes_only_after_recovery_and_the_socket_answers_at_once() {
    // Leave an operation in flight in the journal: kill -9 during a delayed pay.
    let mut d = Daemon::start();
    let mut running = d.client();
    let req = json!({"action": "pay", "request_id": "rdy-1", "amount": 500,
        "params": {"delay_ms": 5000}});
    running.send_raw(format!("{req}\n").as_bytes());
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.sim_calls("rdy-1") == 0 {
        assert!(
            Instant::now() < deadline,
            "the pay never reached the backend"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    d.kill9();

    let (sock, path) = notify_socket(d.dir.path());
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut cmd = d.command();
    cmd.env("NOTIFY_SOCKET", &path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    d.child = Some(cmd.spawn().expect("start the daemon"));
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("READY=1 within 20 s");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.lines().any(|l| l == "READY=1") {
            break;
        }
    }
    // At READY the socket must already answer, and recovery must be done.
    let mut c = Client::connect(&d.socket).expect("the socket accepts at READY");
    let status = c.request(&json!({"action": "status"}));
    assert_eq!(status["code"], 0, "{status}");
    assert_eq!(status["data"]["journal"]["in_flight"], 0, "{status}");
    let v = c.request(&json!({"action": "get_result", "request_id": "rdy-1"}));
    assert_ne!(
        v["reason"], "in_progress",
        "not recovered before READY: {v}"
    );
}

#[test]
fn socket_activation_serves_the_passed_socket_and_binds_none_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let listen = dir.path().join("activated.sock");
    let (xdg, rt) = (dir.path().join("xdg"), dir.path().join("rt"));
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::create_dir_all(&rt).unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&listen)
        .arg("-E")
        .arg("RUST_LOG=debug")
        .arg(format!("-EXDG_RUNTIME_DIR={}", xdg.display()))
        .arg(format!("-ERUNTIME_DIRECTORY={}", rt.display()))
        .arg(BIN)
        .arg("daemon")
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("systemd-socket-activate");
    let guard = scopeguard(&mut child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        if let Ok(c) = Client::connect(&listen) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let v = c.request(&json!({"action": "pay", "request_id": "act-1", "amount": 250}));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(v["data"]["status"], "approved", "{v}\n{text}");
    let v = Client::connect(&listen)
        .unwrap()
        .request(&json!({"action": "get_result", "request_id": "act-1"}));
    assert_eq!(v["code"], 0, "a second connection is served too: {v}");

    assert!(
        text.contains("ready on the socket passed by systemd"),
        "{text}"
    );
    for d in [&xdg, &rt] {
        let names: Vec<_> = std::fs::read_dir(d).unwrap().collect();
        assert!(
            names.is_empty(),
            "the daemon bound its own socket: {names:?}"
        );
    }
    assert!(!Path::new("/run/posbridge/api.sock").exists());

    // It was exec'd in place: same pid. On SIGTERM it exits 0 and leaves systemd's socket.
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(guard.0.id() as i32, libc::SIGTERM) }, 0);
    let status = guard.0.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        listen.exists(),
        "the daemon removed a socket it does not own"
    );
}

/// Kills the child if the test fails before it is reaped.
struct Reap<'a>(&'a mut std::process::Child);

fn scopeguard(child: &mut std::process::Child) -> Reap<'_> {
    Reap(child)
}

impl Drop for Reap<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
