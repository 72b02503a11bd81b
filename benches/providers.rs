//! What posbridge adds to one backend round trip: for each of phonepe, iotpay and paysera, pays
//! against that backend's loopback replica (`posbridge replica NAME`, the release binary, its
//! customer made instant), measured two ways and alternated in blocks:
//!
//! - **direct**: the provider object built in-process from the very config the daemon reads,
//!   `execute()` on a fresh [`Operation`] per pay, on a 2-worker tokio runtime like the
//!   daemon's: exactly the backend protocol, nothing else;
//! - **via posbridge**: the release daemon over its Unix socket, one client, sequential pays
//!   (`"provider": NAME` per request): the socket, JSON, the engine, two durable journal writes
//!   (intent and outcome) and the same provider code.
//!
//! The ratio is via-posbridge mean / direct mean (and the same for p50); target under 1.10.
//! With an instant loopback replica the direct round trip is far shorter than a real backend's
//! (hundreds of ms), so this ratio is the worst case.
//!
//! `cargo bench --bench providers`; `POSBRIDGE_BENCH_QUICK=1` for a short run.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge::config::Config;
use posbridge::provider::{iotpay::IotPay, paysera::Paysera, phonepe::PhonePe};
use posbridge::provider::{OpKind, Operation, Outcome, Provider};

mod common;

use common::{Conn, Daemon, Dist, BIN};

const TARGET: f64 = 1.10;
/// Ends in none of the replicas' special digits (51, 52, 77, 91, 93).
const AMOUNT: u64 = 1000;

struct Backend {
    name: &'static str,
    currency: &'static str,
    /// The secret the replica verifies with and the provider signs with.
    secret: &'static str,
    /// Replica options that make the customer (or terminal) instant.
    options: &'static [(&'static str, &'static str)],
}

const BACKENDS: &[Backend] = &[
    Backend {
        name: "phonepe",
        currency: "INR",
        secret: "bench-phonepe-salt-7d2e",
        options: &[("pay_after_ms", "0")],
    },
    Backend {
        name: "iotpay",
        currency: "CAD",
        secret: "bench-iotpay-key-41c9",
        options: &[("terminal_ms", "0"), ("mch_id", "10000701")],
    },
    Backend {
        name: "paysera",
        currency: "EUR",
        secret: "bench-paysera-mac-0b6f",
        options: &[("reserve_after_ms", "0"), ("client_id", "bench-till")],
    },
];

struct Replica {
    child: Child,
    url: String,
}

impl Replica {
    /// `posbridge replica NAME` on a free loopback port, state in memory (no `--state` file, so
    /// the replica is as fast as it can be: the worst case for the ratio).
    fn start(b: &Backend, log: &Path) -> Replica {
        let mut cmd = Command::new(BIN);
        cmd.args(["replica", b.name, "--listen", "127.0.0.1:0"]);
        for (k, v) in b.options {
            cmd.arg("--option").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .env("POSBRIDGE_REPLICA_SECRET", b.secret)
            .env("RUST_LOG", "warn")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(log).unwrap())
            .spawn()
            .expect("start the replica");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("replica {} said {line:?}", b.name))
            .to_owned();
        Replica { child, url }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provider the daemon builds for `name`, built here from the same parsed config.
fn provider(config: &Config, name: &str) -> Arc<dyn Provider> {
    let p = &config.providers;
    match name {
        "phonepe" => Arc::new(PhonePe::new(p.phonepe.as_ref().unwrap()).unwrap()),
        "iotpay" => Arc::new(IotPay::new(p.iotpay.as_ref().unwrap()).unwrap()),
        "paysera" => Arc::new(Paysera::new(p.paysera.as_ref().unwrap()).unwrap()),
        other => panic!("no provider {other}"),
    }
}

/// A direct pay: `execute()` on a fresh operation; returns its duration.
fn direct_pay(rt: &tokio::runtime::Runtime, p: &dyn Provider, b: &Backend, id: &str) -> Duration {
    let mut op = Operation {
        request_id: id.to_owned(),
        kind: OpKind::Pay,
        provider: b.name.to_owned(),
        amount: Some(AMOUNT),
        currency: b.currency.to_owned(),
        metadata: Default::default(),
        params: Default::default(),
        primary: None,
        created_at: posbridge::clock::now_rfc3339(),
        backend_id: posbridge::provider::new_backend_id(OpKind::Pay),
        progress: Default::default(),
        stages: Default::default(),
    };
    // No journal here: progress notes (Paysera's transaction key) go nowhere.
    op.progress
        .attach(Arc::new(|_, _| Box::pin(async { Ok(()) })));
    let t = Instant::now();
    let outcome = rt.block_on(p.execute(&op));
    let took = t.elapsed();
    assert!(
        matches!(outcome, Outcome::Approved(_)),
        "{} direct pay {id}: {outcome:?}",
        b.name
    );
    took
}

/// The daemon's config: every backend against its replica, secrets in 0600 files.
fn write_config(dir: &Path, replicas: &[Replica]) -> PathBuf {
    let secret_file = |b: &Backend| {
        let path = dir.join(format!("{}.secret", b.name));
        std::fs::write(&path, format!("{}\n", b.secret)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    };
    let [phonepe, iotpay, paysera] = replicas else {
        unreachable!()
    };
    let text = format!(
        r#"default_provider = "sim"

[providers.phonepe]
base_url = {pp_url:?}
merchant_id = "BENCHM"
store_id = "BENCHS"
terminal_id = "BENCHT"
salt_key_file = {pp_key:?}
salt_index = 1
timeout_ms = 10000
request_timeout_ms = 5000
status_poll_ms = [1]

[providers.iotpay]
base_url = "{io_url}/v1/"
mch_id = "10000701"
key_file = {io_key:?}
job_no = "bench"
currency = "CAD"
timeout_ms = 10000
status_poll_ms = [1]

[providers.paysera]
base_url = {ps_url:?}
client_id = "bench-till"
mac_key_file = {ps_key:?}
spot_id = "7"
currency = "EUR"
timeout_ms = 10000
status_poll_ms = [1]
"#,
        pp_url = phonepe.url,
        pp_key = secret_file(&BACKENDS[0]),
        io_url = iotpay.url,
        io_key = secret_file(&BACKENDS[1]),
        ps_url = paysera.url,
        ps_key = secret_file(&BACKENDS[2]),
    );
    let path = dir.join("posbridge.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

struct Row {
    name: &'static str,
    direct: Dist,
    via: Dist,
}

fn main() {
    let quick = std::env::var("POSBRIDGE_BENCH_QUICK").is_ok_and(|v| v == "1");
    // Pays per side and per provider, in blocks that alternate direct / via posbridge.
    let (pays, block, warm) = if quick { (40, 10, 5) } else { (200, 20, 20) };

    let dir = tempfile::tempdir().expect("tempdir");
    let replicas: Vec<Replica> = BACKENDS
        .iter()
        .map(|b| Replica::start(b, &dir.path().join(format!("{}-replica.log", b.name))))
        .collect();
    let config_path = write_config(dir.path(), &replicas);
    let config = Config::load(&config_path).expect("the bench config loads");
    let daemon = Daemon::start(dir.path(), Some(&config_path));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut conn = Conn::open(&daemon.socket);

    let instant = measure(&rt, &config, &mut conn, pays, block, warm, "instant");
    // The same, with every backend request answered 20 ms late (a backend a short network hop
    // away; real payment backends take longer still): the replicas' own `slow` fault on "/".
    let latency_ms = 20;
    for r in &replicas {
        let armed = rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{}/_replica/fault", r.url))
                .json(&serde_json::json!({"path": "/", "kind": "slow",
                    "count": 1_000_000_000u64, "delay_ms": latency_ms}))
                .send()
                .await
        });
        assert!(armed.is_ok_and(|a| a.status().is_success()), "arm latency");
    }
    let latency_pays = pays / 4;
    let networked = measure(
        &rt,
        &config,
        &mut conn,
        latency_pays,
        block / 2,
        warm / 4,
        "latency",
    );
    drop(conn);
    drop(daemon);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!(
        "posbridge backends benchmark{}: pay round trip via posbridge vs. a direct call to the same replica",
        if quick { " (quick)" } else { "" }
    );
    println!(
        "{pays} pays per side per provider, alternating blocks of {block}; {cores} cores, load {load}; \
         state dir {}\n",
        dir.path().display()
    );
    println!("with an instant replica (loopback, customer instant):");
    table(&instant);
    println!(
        "\nwith {latency_ms} ms added to every backend request ({latency_pays} pays per side):"
    );
    table(&networked);
    println!(
        "\nratio = via-posbridge mean / direct mean (target < {TARGET:.2}). What posbridge adds \
         to one backend round trip: the socket, JSON, the engine and two durable journal writes \
         (intent, outcome; one fsync each), and logging at info. The replicas answer on \
         loopback with an instant customer, so the direct round trip is a few ms at most; a \
         real backend takes hundreds of ms, so the first table is the worst case; the second adds \
         {latency_ms} ms to each backend request (several per pay: init and status polls), \
         closer to a backend across a network."
    );
}

/// Pays `pays` times per side per backend, direct and via posbridge in alternating blocks.
fn measure(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    conn: &mut Conn,
    pays: usize,
    block: usize,
    warm: usize,
    tag: &str,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for b in BACKENDS {
        let p = provider(config, b.name);
        for i in 0..warm {
            direct_pay(
                rt,
                p.as_ref(),
                b,
                &format!("warm-direct-{tag}-{}-{i}", b.name),
            );
            conn.pay(b.name, &format!("warm-via-{tag}-{}-{i}", b.name), AMOUNT);
        }
        let (mut direct, mut via) = (Vec::with_capacity(pays), Vec::with_capacity(pays));
        for round in 0..pays / block {
            // ABBA: each side goes first in every other round.
            for side in [round % 2, 1 - round % 2] {
                for j in 0..block {
                    let i = round * block + j;
                    if side == 0 {
                        let id = format!("direct-{tag}-{}-{i}", b.name);
                        direct.push(direct_pay(rt, p.as_ref(), b, &id));
                    } else {
                        via.push(conn.pay(b.name, &format!("via-{tag}-{}-{i}", b.name), AMOUNT));
                    }
                }
            }
        }
        rows.push(Row {
            name: b.name,
            direct: Dist::new(direct),
            via: Dist::new(via),
        });
    }
    rows
}

fn table(rows: &[Row]) {
    println!(
        "{:<8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9} {:>9} {:>10}",
        "provider",
        "direct p50",
        "direct mean",
        "via p50",
        "via mean",
        "added mean",
        "p50 ratio",
        "ratio",
        "< 1.10"
    );
    for r in rows {
        let ratio = r.via.mean() / r.direct.mean();
        let p50_ratio = r.via.pct(50) / r.direct.pct(50);
        println!(
            "{:<8} {:>8.0} µs {:>8.0} µs {:>8.0} µs {:>8.0} µs {:>8.0} µs {:>9.2} {:>9.2} {:>10}",
            r.name,
            r.direct.pct(50),
            r.direct.mean(),
            r.via.pct(50),
            r.via.mean(),
            r.via.mean() - r.direct.mean(),
            p50_ratio,
            ratio,
            if ratio < TARGET { "met" } else { "NOT met" }
        );
    }
    println!();
    for r in rows {
        println!(
            "{:<8} p99: direct {:.0} µs, via posbridge {:.0} µs",
            r.name,
            r.direct.pct(99),
            r.via.pct(99)
        );
    }
}
