//! The fault layer against a one-route backend that counts charges.

use std::sync::Arc;

use axum::routing::{get, post};
use serde_json::{json, Value};

use super::*;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    charges: u32,
}

struct Running {
    url: String,
    store: Arc<Store<Counter>>,
    client: reqwest::Client,
}

async fn start(dir: &tempfile::TempDir) -> Running {
    let store = Arc::new(Store::<Counter>::open(Some(dir.path().join("state.json"))).unwrap());
    let s = store.clone();
    let backend = Router::new()
        .route(
            "/charge",
            post(move || {
                let s = s.clone();
                async move { Json(json!({"charges": s.update(|c| { c.charges += 1; c.charges })})) }
            }),
        )
        .route("/ping", get(|| async { "pong" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, backend));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    Running { url, store, client }
}

impl Running {
    async fn arm(&self, fault: Value) {
        let r = self
            .client
            .post(format!("{}/_replica/fault", self.url))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    async fn charge(&self) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(format!("{}/charge", self.url))
            .send()
            .await
    }
    fn charges(&self) -> u32 {
        self.store.read(|c| c.charges)
    }
}

#[tokio::test]
async fn drop_after_acting_closes_the_connection_but_the_charge_stands() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(&dir).await;
    r.arm(json!({"path": "/charge", "kind": "drop"})).await;
    let err = r.charge().await.unwrap_err();
    assert!(!err.is_timeout(), "dropped, not timed out: {err}");
    assert_eq!(r.charges(), 1);
    // One-shot: the next call is normal.
    assert_eq!(r.charge().await.unwrap().status(), 200);
    assert_eq!(r.charges(), 2);
}

#[tokio::test]
async fn error_before_acting_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(&dir).await;
    r.arm(json!({"path": "/charge", "kind": "error", "after": false, "count": 2}))
        .await;
    assert_eq!(r.charge().await.unwrap().status(), 500);
    assert_eq!(r.charge().await.unwrap().status(), 500);
    assert_eq!(r.charges(), 0);
    assert_eq!(r.charge().await.unwrap().status(), 200);
}

#[tokio::test]
async fn timeout_garbage_and_requests_count() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(&dir).await;
    r.arm(json!({"path": "/charge", "kind": "timeout"})).await;
    assert!(r.charge().await.unwrap_err().is_timeout());
    r.arm(json!({"path": "/charge", "kind": "garbage"})).await;
    let body = r.charge().await.unwrap().text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    assert_eq!(r.charges(), 2);
    let counts: Value = r
        .client
        .get(format!("{}/_replica/requests", r.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["/charge"], 2);
    // Only faults on the path asked for.
    r.arm(json!({"path": "/charge", "kind": "error"})).await;
    assert_eq!(
        r.client
            .get(format!("{}/ping", r.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let del = r
        .client
        .delete(format!("{}/_replica/fault", r.url))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(r.charge().await.unwrap().status(), 200);
}

#[test]
fn state_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    Store::<Counter>::open(Some(path.clone()))
        .unwrap()
        .update(|c| c.charges = 7);
    assert_eq!(
        Store::<Counter>::open(Some(path))
            .unwrap()
            .read(|c| c.charges),
        7
    );
}
