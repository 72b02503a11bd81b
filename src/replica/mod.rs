//! Loopback replicas of the payment backends, for tests and demos (`posbridge replica NAME`).
//!
//! Each replica (one file per backend) verifies signatures exactly as its backend documents,
//! keeps its state in a JSON file (so it outlives daemon restarts, and its own), and counts the
//! calls it gets so tests can prove a request moved money once. This file holds what they
//! share: the state [`Store`], and fault injection driven over HTTP under `/_replica/`:
//!
//! - `POST /_replica/fault` `{"path": "/v1/payment/init", "kind": "drop", "after": true,
//!   "count": 1, "delay_ms": 0}` — the next `count` requests whose path starts with `path` get
//!   the fault: `slow` (wait `delay_ms`, then answer normally), `error` (HTTP 500), `timeout`
//!   (never answer), `drop` (close the connection without an answer), `garbage` (HTTP 200 with
//!   a body that is not JSON). With `after: true` (the default) the replica acts on the request
//!   first — the money moves, the answer is lost — else it fails before acting.
//! - `DELETE /_replica/fault` clears faults; `GET /_replica/requests` counts requests by path;
//!   each replica adds `GET /_replica/state`.
//!
//! Every answer carries a `Date` header from the replica's own wall clock (`crate::clock`), so
//! a test that offsets it (`POSBRIDGE_TEST_CLOCK_OFFSET_FILE` in the replica's environment)
//! plays a backend whose clock differs from the counter's.
//!
//! Replicas are test equipment: they must never be pointed at by a production config.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub mod iotpay;
pub mod paysera;
pub mod phonepe;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Slow,
    Error,
    Timeout,
    Drop,
    Garbage,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fault {
    pub path: String,
    pub kind: FaultKind,
    #[serde(default = "yes")]
    pub after: bool,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub delay_ms: u64,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}

/// What every replica shares: armed faults and request counts.
#[derive(Default)]
pub struct Core {
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<BTreeMap<String, u64>>,
}

impl Core {
    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let i = faults.iter().position(|f| path.starts_with(&f.path))?;
        let fault = faults[i].clone();
        faults[i].count -= 1;
        if faults[i].count == 0 {
            faults.remove(i);
        }
        Some(fault)
    }

    fn count(&self, path: &str) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(path.to_owned())
            .or_default() += 1;
    }
}

/// A replica's state, persisted to a JSON file after every change.
pub struct Store<S> {
    path: Option<PathBuf>,
    state: Mutex<S>,
}

impl<S: Serialize + DeserializeOwned + Default> Store<S> {
    pub fn open(path: Option<PathBuf>) -> std::io::Result<Store<S>> {
        let state = match &path {
            Some(p) if p.exists() => serde_json::from_slice(&std::fs::read(p)?)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            _ => S::default(),
        };
        Ok(Store {
            path,
            state: Mutex::new(state),
        })
    }

    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes the state and writes it out (write-then-rename, so a killed replica never
    /// leaves half a file).
    pub fn update<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut state);
        if let Some(path) = &self.path {
            let tmp = path.with_extension("tmp");
            let written = serde_json::to_vec_pretty(&*state)
                .map_err(std::io::Error::other)
                .and_then(|bytes| std::fs::write(&tmp, bytes))
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                log::error!("replica state {}: {e}", path.display());
            }
        }
        r
    }
}

/// Closes this request's connection without an answer.
#[derive(Clone)]
struct Killer(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl Killer {
    fn kill(&self) {
        if let Some(tx) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

async fn fail(kind: FaultKind, killer: &Killer) -> Response {
    match kind {
        FaultKind::Error => (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response(),
        FaultKind::Garbage => (StatusCode::OK, "<html>not json \u{1}\u{2}").into_response(),
        FaultKind::Drop => {
            killer.kill();
            std::future::pending().await
        }
        FaultKind::Timeout => std::future::pending().await,
        FaultKind::Slow => unreachable!("slow is not a failure"),
    }
}

async fn apply_faults(
    State(core): State<Arc<Core>>,
    Extension(killer): Extension<Killer>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_replica/") {
        return next.run(req).await;
    }
    core.count(&path);
    let Some(fault) = core.take_fault(&path) else {
        return next.run(req).await;
    };
    log::info!(
        "replica: injecting {:?} (after: {}) on {path}",
        fault.kind,
        fault.after
    );
    tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    if fault.kind == FaultKind::Slow {
        return next.run(req).await;
    }
    if fault.after {
        // The backend acts on the request; only the answer is lost.
        drop(next.run(req).await);
    }
    fail(fault.kind, &killer).await
}

async fn arm(State(core): State<Arc<Core>>, Json(fault): Json<Fault>) -> StatusCode {
    core.faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(fault);
    StatusCode::NO_CONTENT
}

async fn disarm(State(core): State<Arc<Core>>) -> StatusCode {
    core.faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    StatusCode::NO_CONTENT
}

async fn requests(State(core): State<Arc<Core>>) -> Json<BTreeMap<String, u64>> {
    Json(
        core.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    )
}

/// Stamps every answer with `Date` from the replica's clock (through the test seam).
async fn date_header(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let date = crate::clock::http_date(crate::clock::now());
    if let Ok(value) = axum::http::HeaderValue::from_str(&date) {
        resp.headers_mut().insert(axum::http::header::DATE, value);
    }
    resp
}

/// How `posbridge replica` was started.
pub struct Options {
    pub backend: String,
    pub listen: std::net::SocketAddr,
    pub state: Option<PathBuf>,
    pub secret: Option<crate::secret::Secret>,
    pub options: BTreeMap<String, String>,
}

/// Runs one replica until the process is killed. Prints `listening on http://ADDR` first.
pub fn run(opts: Options) -> anyhow::Result<()> {
    use anyhow::Context;
    if !opts.listen.ip().is_loopback() {
        anyhow::bail!("a replica listens on loopback only, not {}", opts.listen);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let router = backend(&opts)?;
        let listener = TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("cannot listen on {}", opts.listen))?;
        println!("listening on http://{}", listener.local_addr()?);
        use std::io::Write;
        std::io::stdout().flush()?;
        serve(listener, router).await?;
        Ok(())
    })
}

/// The routes of the replica `opts.backend`: one arm per backend.
fn backend(opts: &Options) -> anyhow::Result<Router> {
    match opts.backend.as_str() {
        "iotpay" => iotpay::router(opts),
        "paysera" => paysera::router(opts),
        "phonepe" => phonepe::router(opts),
        other => anyhow::bail!("no replica named {other:?}; expected phonepe, iotpay or paysera"),
    }
}

/// Serves `backend` (a replica's routes) with the fault layer and control routes, until the
/// process ends.
pub async fn serve(listener: TcpListener, backend: Router) -> std::io::Result<()> {
    let core = Arc::new(Core::default());
    let control = Router::new()
        .route("/_replica/fault", post(arm).delete(disarm))
        .route("/_replica/requests", axum::routing::get(requests))
        .with_state(core.clone());
    let app = backend
        .merge(control)
        .layer(middleware::from_fn_with_state(core, apply_faults))
        .layer(middleware::from_fn(date_header));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("replica accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (kill_tx, kill_rx) = oneshot::channel();
        let svc = app
            .clone()
            .layer(Extension(Killer(Arc::new(Mutex::new(Some(kill_tx))))));
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                // Our own `Date` (below), from the replica's clock.
                .auto_date_header(false)
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(svc),
                );
            tokio::select! {
                _ = conn => {}
                // Dropping the connection future closes the socket mid-request.
                _ = kill_rx => {}
            }
        });
    }
}

#[cfg(test)]
mod tests;
