//! What the benchmarks share: the release daemon on a temporary state directory, a blocking
//! connection to its socket, and a latency distribution.

#![allow(dead_code)] // each bench uses its own subset

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_posbridge");

/// The real binary, started as `posbridge daemon` on `dir` (socket `dir/api.sock`, state
/// `dir/state`, log `dir/daemon.log`), outside systemd; SIGTERM on drop.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
}

impl Daemon {
    pub fn start(dir: &Path, config: Option<&Path>) -> Daemon {
        Daemon::start_notifying(dir, config, None)
    }

    /// `start`, with `NOTIFY_SOCKET` set to `notify` when given (the daemon then sends its
    /// READY there, as under systemd).
    pub fn start_notifying(dir: &Path, config: Option<&Path>, notify: Option<&Path>) -> Daemon {
        let socket = dir.join("api.sock");
        let mut cmd = Command::new(BIN);
        cmd.arg("daemon")
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.join("state"));
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        match notify {
            Some(path) => cmd.env("NOTIFY_SOCKET", path),
            None => cmd.env_remove("NOTIFY_SOCKET"),
        };
        let child = cmd
            .env_remove("LISTEN_FDS")
            .env_remove("WATCHDOG_USEC")
            .env_remove("POSBRIDGE_CONFIG")
            .env_remove("JOURNAL_STREAM")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.join("daemon.log")).unwrap())
            .spawn()
            .expect("start the release daemon");
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { child, socket }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// One connection to the daemon, one request line out and one answer line back at a time.
pub struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    line: String,
}

impl Conn {
    pub fn open(socket: &Path) -> Conn {
        let writer = UnixStream::connect(socket).expect("connect to the daemon");
        Conn {
            reader: BufReader::new(writer.try_clone().unwrap()),
            writer,
            line: String::new(),
        }
    }

    /// One request line out, one answer line back; returns the answer.
    pub fn call(&mut self, request: &str) -> &str {
        self.writer.write_all(request.as_bytes()).unwrap();
        self.line.clear();
        let n = self.reader.read_line(&mut self.line).unwrap();
        assert!(n > 0, "the daemon closed the connection");
        &self.line
    }

    /// An approved pay of `amount` with `provider`; its round trip (request line written to
    /// answer read). Panics with the answer when it was not approved.
    pub fn pay(&mut self, provider: &str, id: &str, amount: u64) -> Duration {
        let request = format!(
            "{{\"action\":\"pay\",\"request_id\":\"{id}\",\"amount\":{amount},\"provider\":\"{provider}\"}}\n"
        );
        let (took, answer) = self.timed(&request);
        assert!(
            answer.starts_with("{\"code\":0"),
            "{provider} pay {id} via posbridge failed: {answer}"
        );
        took
    }

    /// `call`, timed from the request written to the answer read.
    pub fn timed(&mut self, request: &str) -> (Duration, &str) {
        let t = Instant::now();
        self.call(request);
        (t.elapsed(), &self.line)
    }
}

/// Sorted durations in microseconds.
pub struct Dist(pub Vec<f64>);

impl Dist {
    pub fn new(mut d: Vec<Duration>) -> Dist {
        d.sort();
        Dist(d.iter().map(|d| d.as_secs_f64() * 1e6).collect())
    }
    pub fn pct(&self, p: usize) -> f64 {
        self.0[(self.0.len() * p / 100).min(self.0.len() - 1)]
    }
    pub fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len() as f64
    }
}

/// A config with the `lifepay` provider (`login`, the password in a file beside it, INR), both
/// files 0600 as the daemon requires; its path.
pub fn lifepay_config(dir: &Path, login: &str, password: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let secret = dir.join("lifepay.password");
    std::fs::write(&secret, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("posbridge.toml");
    std::fs::write(
        &path,
        format!(
            "[providers.lifepay]\nlogin = {login:?}\npassword_file = {:?}\ncurrency = \"INR\"\n",
            secret.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
