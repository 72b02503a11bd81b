//! Fuzzes Paysera's answer handling as the client does it: `client::read_reply` (HTTP status
//! and body into a JSON object or an `ApiError`), then the shapes read from it (spot with its
//! orders, order, transaction key). Bytes 0-1 are the HTTP status, the rest the body.
//! Invariants: no panic; only a 2xx is ever a usable answer, and it is an object; an error's
//! detail is printable and bounded; a parsed spot or order, written back in the document's
//! shape, parses to the same value; `order_for` finds each order the spot lists by its key.

#![no_main]

use libfuzzer_sys::fuzz_target;
use posbridge::provider::paysera::client::{
    ApiError, Order, Spot, parse_order, parse_spot, read_reply, transaction_key,
};
use serde_json::{Value, json};

fn order_json(o: &Order) -> Value {
    json!({"id": o.id, "status": o.status, "transaction_key": o.transaction_key})
}

fuzz_target!(|data: &[u8]| {
    let [hi, lo, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*hi, *lo]) % 600;
    match read_reply(status, body, None) {
        Ok(v) => {
            assert!(
                (200..300).contains(&status),
                "HTTP {status} taken as an answer"
            );
            assert!(v.is_object());
            if let Ok(spot) = parse_spot(&v) {
                for o in &spot.orders {
                    let found = spot.order_for(&o.transaction_key).expect("listed order");
                    assert_eq!(found.transaction_key, o.transaction_key);
                }
                let again = json!({
                    "status": spot.status,
                    "identifier": spot.identifier,
                    "place_info": {"location_id": spot.location_id},
                    "orders": spot.orders.iter().map(order_json).collect::<Vec<_>>(),
                });
                assert_eq!(Spot::parse(&again).as_ref(), Some(&spot));
            }
            if let Ok(order) = parse_order(&v) {
                assert_eq!(Order::parse(&order_json(&order)).as_ref(), Some(&order));
            }
            if let Ok(key) = transaction_key(&v) {
                assert!(!key.is_empty());
            }
        }
        Err(e) => {
            match &e {
                ApiError::Garbled { status: s, detail } => {
                    assert_eq!(*s, status);
                    assert!(detail.chars().count() <= 200);
                    assert!(!detail.chars().any(char::is_control));
                    assert!(e.maybe_acted());
                }
                ApiError::Refused { status: s, .. } => assert_eq!(*s, status),
                ApiError::Http(_) => panic!("read_reply made an HTTP error"),
            }
            assert!(!e.to_string().is_empty());
        }
    }
});
