//! Harness for backend replicas: `posbridge replica NAME` as a child process on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::BIN;

pub struct Replica {
    child: Child,
    pub url: String,
    pub state: PathBuf,
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl Replica {
    /// Starts replica `backend` keeping its state in `dir`, verifying with `secret`.
    pub fn start(dir: &Path, backend: &str, secret: &str, options: &[(&str, &str)]) -> Replica {
        let state = dir.join(format!("{backend}-replica.json"));
        Replica::start_at(&state, "127.0.0.1:0", backend, secret, options)
    }

    /// Starts (or restarts) a replica on `listen` with the state file `state`.
    pub fn start_at(
        state: &Path,
        listen: &str,
        backend: &str,
        secret: &str,
        options: &[(&str, &str)],
    ) -> Replica {
        Replica::start_env(state, listen, backend, secret, options, &[])
    }

    /// As [`Replica::start_at`], with extra environment (e.g. a stepped clock).
    pub fn start_env(
        state: &Path,
        listen: &str,
        backend: &str,
        secret: &str,
        options: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Replica {
        let mut cmd = Command::new(BIN);
        cmd.envs(env.iter().copied());
        cmd.args(["replica", backend, "--listen", listen, "--state"])
            .arg(state);
        for (k, v) in options {
            cmd.arg("--option").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .env("POSBRIDGE_REPLICA_SECRET", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start replica");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("replica said {line:?}"))
            .to_owned();
        Replica {
            child,
            url,
            state: state.to_owned(),
        }
    }

    /// `host:port` of the replica.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    pub fn get(&self, path: &str) -> Value {
        block_on(async {
            reqwest::get(format!("{}{path}", self.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }

    /// Arms a fault (see src/replica/mod.rs), e.g. `{"path": "/v1/payment/init", "kind": "drop"}`.
    pub fn arm(&self, fault: Value) {
        let status = block_on(async {
            reqwest::Client::new()
                .post(format!("{}/_replica/fault", self.url))
                .json(&fault)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 204, "arming {fault}");
    }

    /// Requests seen, by path.
    pub fn requests(&self) -> Value {
        self.get("/_replica/requests")
    }

    /// The replica's own state (`GET /_replica/state`).
    pub fn state(&self) -> Value {
        self.get("/_replica/state")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}
