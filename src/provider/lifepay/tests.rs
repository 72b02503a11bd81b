//! Unit tests of the reader route's request building: which id the reader gets (the backend
//! id; the request_id only for intents from before backend ids), which credentials, and what
//! a version 1 reader can carry.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

fn route(dir: &std::path::Path) -> Lifepay {
    let cfg = LifepayConfig {
        login: "shop".into(),
        password: Some(Secret::new("configured")),
        password_file: None,
        reader: None,
        currency: None,
        timeout_ms: None,
        status_poll_ms: None,
    };
    let devices = DeviceManager::start(dir, CancellationToken::new()).unwrap();
    Lifepay::new(&cfg, devices).unwrap()
}

fn op(backend_id: &str, params: serde_json::Value) -> Operation {
    Operation {
        request_id: "till3-0042".into(),
        kind: OpKind::Pay,
        provider: "lifepay".into(),
        amount: Some(2500),
        currency: DEFAULT_CURRENCY.into(),
        metadata: [("OrderId".to_owned(), "1".to_owned())].into(),
        params: params.as_object().cloned().unwrap_or_default(),
        primary: None,
        created_at: "2026-12-01T00:00:00Z".into(),
        backend_id: backend_id.into(),
        progress: Default::default(),
    }
}

#[tokio::test]
async fn the_reader_gets_the_backend_id_and_an_old_intent_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let lp = route(dir.path());
    let new = op("P0123456789abcdef0123456789ab", json!({}));
    assert_eq!(reader_id(&new), "P0123456789abcdef0123456789ab");
    assert_eq!(lp.request(&new, 2).unwrap().request_id, new.backend_id);
    let legacy = op("", json!({}));
    assert_eq!(reader_id(&legacy), "till3-0042");
    assert_eq!(legacy_reader_id(&legacy), "till3-0042");
    assert_eq!(lp.default_currency(), "RUB");
}

#[tokio::test]
async fn the_request_s_credentials_and_details_go_to_a_version_2_reader() {
    let dir = tempfile::tempdir().unwrap();
    let lp = route(dir.path());
    let fields = json!({"login": "cashier", "password": "pw", "email": "a@b.ru",
        "sign_on_screen": "1"});
    let req = lp.request(&op("P1", fields.clone()), 2).unwrap();
    let creds = req.credentials.unwrap();
    assert_eq!(
        (creds.login.as_str(), creds.password.as_str()),
        ("cashier", "pw")
    );
    let details = req.details.unwrap();
    assert!(details.sign_on_screen);
    assert_eq!(details.email.as_deref(), Some("a@b.ru"));
    assert_eq!(details.metadata["OrderId"], "1");
    // Without them: the configured login; a version 1 reader gets no details block.
    let plain = lp.request(&op("P2", json!({})), 1).unwrap();
    assert_eq!(plain.credentials.unwrap().login, "shop");
    assert!(plain.details.is_none());
    // What a version 1 reader cannot carry is refused before anything is sent.
    let refused = lp.request(&op("P3", fields), 1).unwrap_err();
    assert_eq!(refused.reason, "not_supported");
}
