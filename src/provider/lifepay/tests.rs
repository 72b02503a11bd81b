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
        stages: Default::default(),
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

/// A card reader as docs/link-protocol.md §9 (version 3) describes it: operations numbered
/// from a counter, the oldest evicted beyond `keep`, and a new result store (random id, any
/// counter) whenever it loses its memory.
#[derive(Debug, Clone)]
struct ModelReader {
    store: u64,
    next: u64,
    held: std::collections::VecDeque<(u64, bool)>, // (number, is it our operation?)
    keep: usize,
}

impl ModelReader {
    fn receive(&mut self, ours: bool) {
        self.held.push_back((self.next, ours));
        self.next += 1;
        while self.held.len() > self.keep {
            self.held.pop_front();
        }
    }

    fn window(&self) -> crate::device::link::ResultWindow {
        crate::device::link::ResultWindow {
            store: self.store,
            oldest: self.held.front().map_or(self.next, |h| h.0),
            next: self.next,
        }
    }
}

#[derive(Debug, Clone)]
enum Event {
    Other,
    Wipe(u64),
}

fn events(most: usize) -> impl proptest::strategy::Strategy<Value = Vec<Event>> {
    use proptest::prelude::*;
    proptest::collection::vec(
        prop_oneof![12 => Just(Event::Other), 1 => (0u64..6).prop_map(Event::Wipe)],
        0..most,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    /// The window reading never says "never received" about an operation the reader did
    /// receive (whatever it evicted or forgot since), and does say it when the reader kept
    /// its memory and evicted nothing it held when the START was sent.
    #[test]
    fn a_result_window_never_calls_a_received_operation_never_received(
        keep in 0usize..6,
        start in 0u64..4,
        before in events(40),
        between in 0usize..4,
        received in proptest::bool::ANY,
        after in events(8),
    ) {
        let mut stores = 1u64;
        let mut reader = ModelReader { store: 1, next: start, held: Default::default(), keep };
        let mut apply = |reader: &mut ModelReader, e: &Event| match e {
            Event::Other => reader.receive(false),
            // A new memory whose counter starts anywhere, also where the old one stood.
            Event::Wipe(offset) => {
                stores += 1;
                *reader = ModelReader { store: stores, next: start + offset, held: Default::default(), keep };
            }
        };
        for e in &before {
            apply(&mut reader, e);
        }
        let sent = (reader.store, reader.next); // recorded before the START
        for _ in 0..between {
            reader.receive(false); // another host's operations, or refunds, in between
        }
        if received {
            reader.receive(true);
        }
        let mut wiped = false;
        for e in &after {
            wiped |= matches!(e, Event::Wipe(_));
            apply(&mut reader, e);
        }
        if reader.held.iter().any(|h| h.1) {
            return Ok(()); // found: no RESULT_NOT_FOUND to read
        }
        let verdict = super::recovery::verdict(&op("P1", json!({})), sent, reader.window());
        if received {
            proptest::prop_assert!(
                matches!(&verdict, Outcome::Unknown(f) if f.reason == "manual_check"),
                "{verdict:?}"
            );
        } else if !wiped && reader.window().oldest <= sent.1 {
            proptest::prop_assert!(matches!(verdict, Outcome::NotFound(_)), "{verdict:?}");
        }
    }
}
