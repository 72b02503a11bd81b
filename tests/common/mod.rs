//! Test harness: starts the real `posbridge` binary on temporary paths and talks to it over
//! its real socket, the way a POS does. Each test gets its own daemon, directory and socket.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod bluez;
pub mod clock;
pub mod emulator;
pub mod kill_loop;
pub mod paysera;
pub mod replica;
pub mod schema;
pub mod scrape;
pub mod skip;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_posbridge");

/// Waits for `child` (a daemon expected to refuse to start) to exit within `limit`; kills it
/// and fails, showing `log`, when it is still running then (`what`: why it should have exited).
pub fn exit_within(
    child: &mut Child,
    limit: Duration,
    log: &Path,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the daemon started {what}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every datagram on a notify socket `sock` (sd_notify's) until `done` holds or `limit`
/// passes, one Vec of lines per datagram.
pub fn collect_until(
    sock: &UnixDatagram,
    limit: Duration,
    done: impl Fn(&[Vec<String>]) -> bool,
) -> Vec<Vec<String>> {
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&out) && Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            out.push(text.lines().map(str::to_owned).collect());
        }
    }
    out
}

/// The fields of a LIFE POS contract error answer, in wire order (seed document 003).
pub const CONTRACT_ERROR_KEYS: [&str; 7] = [
    "code",
    "request_id",
    "metadata",
    "action",
    "error_type",
    "message",
    "log",
];

/// The keys of a JSON object answer, in order.
pub fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The keys of an approved answer's `data`, in order: the five every one starts with, then
/// `own` (space-separated, from `charged_amount` or `currency` on), then the two stamps.
pub fn approved_keys(own: &str) -> Vec<&str> {
    let head = ["request_id", "operation", "provider", "status", "amount"];
    let tail = ["created_at", "completed_at"];
    head.into_iter()
        .chain(own.split_whitespace())
        .chain(tail)
        .collect()
}

pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub state: PathBuf,
    pub config: Option<PathBuf>,
    env: Vec<(String, String)>,
    starts: usize,
}

impl Daemon {
    /// A daemon on the embedded defaults.
    pub fn start() -> Daemon {
        Daemon::start_with(None, &[])
    }

    /// A daemon with `config` (TOML text, written to a file) and extra environment.
    pub fn start_with(config: Option<&str>, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config.map(|text| {
            let path = dir.path().join("posbridge.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut d = Daemon {
            child: None,
            socket: dir.path().join("api.sock"),
            state: dir.path().join("state"),
            dir,
            config,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts: 0,
        };
        d.spawn();
        d.wait_ready();
        d
    }

    /// Runs the daemon once more and expects it to refuse to start (`what`: on what, for the
    /// panic): it must exit non-zero within a minute. Its stderr.
    pub fn refused_start(&self, what: &str) -> String {
        let log = self.dir.path().join("refused.log");
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run the daemon");
        let status = exit_within(&mut child, Duration::from_secs(60), &log, what);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!status.success(), "it must not start ({status}):\n{text}");
        text
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("daemon-{}.log", self.starts))
    }

    /// Everything every run of the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("daemon-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The log once it contains `needle` (a line written after the socket already answers,
    /// such as start-up's summary), or as it is after `limit`.
    pub fn log_with(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The command that starts the daemon on this test's paths (not yet spawned).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("daemon")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .env_remove("POSBRIDGE_CONFIG")
            .env("RUST_LOG", "debug");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start posbridge daemon");
        self.child = Some(child);
    }

    /// Waits until the daemon answers `status` (it binds only after recovery).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("daemon exited early ({status}):\n{}", self.log());
            }
            if let Ok(mut c) = Client::connect(&self.socket) {
                if c.request(&json!({"action": "status"}))["code"] == 0 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready in 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// kill -9: no chance to clean up, as in a crash or power cut of the process.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.child.take().unwrap().wait().unwrap();
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(Duration::from_secs(30))
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the daemon again on the same state directory and socket.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the daemon first");
        self.spawn();
        self.wait_ready();
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect to daemon")
    }

    /// One request on a fresh connection.
    pub fn request(&self, req: Value) -> Value {
        self.client().request(&req)
    }

    /// Polls get_result until `done(answer)` holds or `limit` passes; returns the last answer.
    pub fn await_result(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let answer = self.request(json!({"action": "get_result", "request_id": id}));
            if done(&answer) || Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `n` operations are running (in flight in the journal, read from its file:
    /// a request over the socket could be refused while every connection is busy).
    pub fn wait_in_flight(&self, n: i64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let in_flight = || -> i64 {
            let conn = rusqlite::Connection::open(self.state.join("journal.sqlite")).unwrap();
            conn.query_row(
                "SELECT count(*) FROM operations WHERE state = 'in_flight'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0)
        };
        while in_flight() < n {
            assert!(Instant::now() < deadline, "{what} never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("POSBRIDGE_SOCKET", &self.socket)
            .output()
            .expect("run posbridge CLI")
    }

    /// How many money-moving calls the sim backend received for `request_id`.
    /// `posbridge pay --provider lifepay --amount AMOUNT --request-id ID --json`: its exit code
    /// and answer.
    #[allow(dead_code)]
    pub fn lifepay_pay(&self, id: &str, amount: u64) -> (Option<i32>, Value) {
        let out = self.cli(&[
            "pay",
            "--provider",
            "lifepay",
            "--amount",
            &amount.to_string(),
            "--request-id",
            id,
            "--json",
        ]);
        (out.status.code(), json_of(&out))
    }

    /// Runs the CLI with `args` in a thread (a POS waiting for its answer meanwhile).
    #[allow(dead_code)]
    /// `posbridge pay --provider lifepay --amount 4093 --request-id ID --json` on its own
    /// thread: the emulated reader takes 3 s over amounts ending 93, time to cut the link.
    pub fn slow_reader_sale_in_thread(&self, request_id: &str) -> std::thread::JoinHandle<Output> {
        self.cli_in_thread(&[
            "pay",
            "--provider",
            "lifepay",
            "--amount",
            "4093",
            "--request-id",
            request_id,
            "--json",
        ])
    }

    pub fn cli_in_thread(&self, args: &[&str]) -> std::thread::JoinHandle<Output> {
        let socket = self.socket.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            Command::new(BIN)
                .args(&args)
                .env("POSBRIDGE_SOCKET", socket)
                .output()
                .unwrap()
        })
    }

    pub fn sim_calls(&self, request_id: &str) -> i64 {
        sim_calls(&self.state, request_id)
    }

    /// The backend id the journal holds for `request_id` (the id the backend or reader got),
    /// waiting up to 20 s for its intent to be written.
    #[allow(dead_code)]
    pub fn backend_id(&self, request_id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = rusqlite::Connection::open_with_flags(
                self.state.join("journal.sqlite"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .and_then(|c| {
                c.query_row(
                    "SELECT operation FROM operations WHERE request_id = ?1",
                    [request_id],
                    |r| r.get::<_, String>(0),
                )
            });
            if let Ok(op) = found {
                let op: Value = serde_json::from_str(&op).unwrap();
                return op["backend_id"].as_str().unwrap_or_default().to_owned();
            }
            assert!(Instant::now() < deadline, "no intent for {request_id}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every byte of the journal's files (database, WAL, shared memory), for leak checks.
    #[allow(dead_code)]
    pub fn journal_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&self.state).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal")
            {
                all.extend(std::fs::read(&path).unwrap_or_default());
            }
        }
        all
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The one JSON line a `--json` CLI command printed; panics with its stderr otherwise.
#[allow(dead_code)] // not every test binary uses every helper
/// `posbridge config check PATH`, run to completion.
pub fn config_check(path: &Path) -> Output {
    Command::new(BIN)
        .args(["config", "check"])
        .arg(path)
        .output()
        .expect("run posbridge config check")
}

pub fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON line ({e}): {text:?}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `shop-17:FILE` for `posbridge emulate card-reader --account`: the reader then accepts only
/// the login and password that `lifepay_daemon(dir, password)` is configured with (the same
/// file), so every approved sale also proves the configured password reached the reader.
#[allow(dead_code)]
pub fn lifepay_account(dir: &Path, password: &str) -> String {
    let file = dir.join("lifepay.password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    format!("shop-17:{}", file.display())
}

/// A daemon with `[providers.lifepay]` (login shop-17, INR), its password in a file in `dir`.
#[allow(dead_code)]
pub fn lifepay_daemon(dir: &Path, password: &str) -> Daemon {
    let file = dir.join("lifepay.password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let config = format!(
        "[providers.lifepay]\nlogin = \"shop-17\"\npassword_file = \"{}\"\ncurrency = \"INR\"\n",
        file.display()
    );
    Daemon::start_with(Some(&config), &[])
}

/// The request ids of a `results` answer, in its order (newest first).
#[allow(dead_code)]
pub fn result_ids(answer: &Value) -> Vec<&str> {
    answer["data"]["results"]
        .as_array()
        .expect("data.results")
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect()
}

/// The check named `name` in a `doctor --json` report.
#[allow(dead_code)]
pub fn doctor_check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

pub fn sim_calls(state: &Path, request_id: &str) -> i64 {
    let conn = rusqlite::Connection::open(state.join("sim-backend.sqlite")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM calls WHERE request_id = ?1",
        [request_id],
        |r| r.get(0),
    )
    .unwrap()
}

/// Sends `req` on its own connection from a thread; the thread returns the answer line, or
/// `None` if the connection ended first (the daemon died).
pub fn send_in_thread(d: &Daemon, req: Value) -> std::thread::JoinHandle<Option<String>> {
    let stream = UnixStream::connect(&d.socket).expect("connect");
    std::thread::spawn(move || {
        let mut w = stream.try_clone().ok()?;
        w.write_all(format!("{req}\n").as_bytes()).ok()?;
        let mut line = String::new();
        match BufReader::new(stream).read_line(&mut line) {
            Ok(n) if n > 0 => {
                let line = line.trim_end().to_owned();
                schema::check_answer(&line);
                Some(line)
            }
            _ => None,
        }
    })
}

/// One connection to the daemon: lines out, lines in.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> std::io::Result<Client> {
        let writer = UnixStream::connect(path)?;
        writer.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Client {
            reader: BufReader::new(writer.try_clone()?),
            writer,
        })
    }

    /// The connection's write side, for a thread that writes while this one reads.
    pub fn try_clone_stream(&self) -> UnixStream {
        self.writer.try_clone().unwrap()
    }

    /// Sends raw bytes (a newline is not added).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Reads one response line; `None` at EOF. Every line read is checked against the API's
    /// JSON Schema ([`schema::check_answer`]).
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                let line = line.trim_end_matches('\n').to_owned();
                schema::check_answer(&line);
                Some(line)
            }
            Err(e) => panic!("reading a response: {e}"),
        }
    }

    /// Sends one line and returns the raw response line.
    pub fn line(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\n").as_bytes());
        self.read_line().expect("a response line")
    }

    pub fn request(&mut self, req: &Value) -> Value {
        let raw = self.line(&req.to_string());
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("bad response {raw:?}: {e}"))
    }

    /// Sends `req` (with `"progress": true` for events) and reads the event lines before its
    /// answer, then the answer: the first line with a `code`. Every event must be
    /// `{"event":"progress",...}` or a scan's `{"event":"found",...}`, of the request's own
    /// request_id (the schema checks the rest).
    pub fn request_with_events(&mut self, req: &Value) -> (Vec<Value>, Value) {
        self.send_raw(format!("{req}\n").as_bytes());
        self.read_with_events()
    }

    /// The progress event lines of the next answer, then that answer (see
    /// [`Client::request_with_events`]).
    pub fn read_with_events(&mut self) -> (Vec<Value>, Value) {
        let mut events: Vec<Value> = Vec::new();
        loop {
            let raw = self.read_line().expect("an event or the answer");
            let line: Value =
                serde_json::from_str(&raw).unwrap_or_else(|e| panic!("bad line {raw:?}: {e}"));
            if line.get("code").is_some() {
                for e in &events {
                    assert_eq!(e["request_id"], line["request_id"], "{e} before {line}");
                }
                return (events, line);
            }
            assert!(
                line["event"] == "progress" || line["event"] == "found",
                "neither an event nor an answer: {raw}"
            );
            events.push(line);
        }
    }
}

/// A new pty pair: (master, slave).
pub fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two fds into the out-parameters; null name/termios/winsize are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    }
}

/// The `stage`s of `events`, in order.
pub fn stages(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["stage"].as_str().unwrap())
        .collect()
}

/// The answer `pay` of the operation `id` is the refusal `default_error`/`reason`, and
/// get_result answers it the same (abort from the POS: the running pay's own answer).
pub fn assert_ended_as(d: &Daemon, id: &str, pay: &Value, reason: &str) {
    assert_eq!(
        (&pay["error_type"], &pay["reason"]),
        (&json!("default_error"), &json!(reason)),
        "{pay}"
    );
    let stored = d.request(json!({"action": "get_result", "request_id": id}));
    assert_eq!(&stored, pay, "get_result says what {id} answered");
}
