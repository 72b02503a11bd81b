//! Starts `posbridge emulate` (the real binary) on a pty linked inside a test directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

pub struct Emulator {
    pub child: Option<Child>,
    pub kind: &'static str,
    pub link: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
    pub extra: Vec<String>,
    pub starts: usize,
}

impl Emulator {
    /// `kind` is `card-reader` or `dqr-display`; the link and state live in `dir`.
    pub fn start(kind: &'static str, dir: &Path, name: &str, extra: &[&str]) -> Emulator {
        Emulator::start_with(kind, dir, name, extra, Stdio::null())
    }

    /// As `start`, with stdout piped (a display prints what it shows there).
    pub fn start_piped(kind: &'static str, dir: &Path, name: &str, extra: &[&str]) -> Emulator {
        Emulator::start_with(kind, dir, name, extra, Stdio::piped())
    }

    fn start_with(
        kind: &'static str,
        dir: &Path,
        name: &str,
        extra: &[&str],
        stdout: Stdio,
    ) -> Emulator {
        let mut e = Emulator {
            child: None,
            kind,
            link: dir.join(name),
            state: dir.join(format!("{name}.state.json")),
            log: dir.join(format!("{name}.log")),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            starts: 0,
        };
        e.spawn(stdout);
        e
    }

    /// Waits until the reader has stored `request_id` (it started, and committed the charge).
    pub fn wait_started(&self, request_id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&self.state)
            .unwrap_or_default()
            .contains(request_id)
        {
            assert!(
                Instant::now() < deadline,
                "the reader never started {request_id}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self, stdout: Stdio) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .arg("emulate")
            .arg(self.kind)
            .arg("--pty")
            .arg(&self.link)
            .arg("--state")
            .arg(&self.state)
            .args(&self.extra)
            .env("RUST_LOG", "debug")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("start posbridge emulate");
        self.child = Some(child);
        // Ready once this run said where it linked its pty (a restart may get the same pty
        // number, so the link's target alone cannot tell).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.log_text().matches("linked at").count() >= self.starts {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("emulator exited early ({status}):\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "emulator not up in 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9: the device vanishes as if unplugged, mid-whatever.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the device stays attached but answers nothing (as a reader that ignores an
    /// unbonded host's writes); [`Emulator::resume`] undoes it.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("the emulator runs").id();
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn(Stdio::null());
    }

    /// As `restart`, with stdout piped again.
    pub fn restart_piped(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn(Stdio::piped());
    }

    pub fn stdout(&mut self) -> std::process::ChildStdout {
        self.child
            .as_mut()
            .unwrap()
            .stdout
            .take()
            .expect("piped stdout")
    }

    /// The reader's state file, parsed.
    pub fn state_json(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap()
    }

    /// How many stored results the reader has for `request_id`, and its charge counter.
    pub fn charges(&self, request_id: &str) -> (usize, u64) {
        let state = self.state_json();
        let n = state["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["request_id"] == request_id && r["outcome"] == "approved")
            .count();
        (n, state["charges"].as_u64().unwrap())
    }

    /// The reader's stored result for the id it was sent (`None` if it never got that id).
    #[allow(dead_code)]
    pub fn stored(&self, reader_id: &str) -> Option<serde_json::Value> {
        self.state_json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["request_id"] == reader_id)
            .cloned()
    }

    /// The reader charged `request_id` once (and nothing else), and was asked about it after
    /// the link came back rather than sent the sale again.
    pub fn assert_charged_once_never_restarted(&self, request_id: &str) {
        assert_eq!(self.charges(request_id), (1, 1), "exactly one charge");
        assert!(
            !self
                .log_text()
                .contains(&format!("{request_id}: known request")),
            "the sale was started again instead of asked about:\n{}",
            self.log_text()
        );
    }

    pub fn address(&self) -> String {
        format!("serial:{}", self.link.display())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill9();
    }
}
