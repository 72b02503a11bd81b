//! The sim backend's ledger stays bounded (issue 19 item 2): each close_shift drops the calls
//! of shifts closed more than `KEEP_SHIFTS` ago, and the shift numbers and totals go on as
//! before. A counter that closes its shift daily keeps about two months of calls.

mod common;

use common::Daemon;
use posbridge::provider::sim::KEEP_SHIFTS;
use serde_json::json;

fn ledger_rows(d: &Daemon) -> i64 {
    let conn = rusqlite::Connection::open(d.state.join("sim-backend.sqlite")).unwrap();
    conn.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn the_ledger_keeps_only_the_last_shifts_and_their_numbers_go_on() {
    let d = Daemon::start();
    let shifts = KEEP_SHIFTS + 5;
    for n in 1..=shifts {
        for k in 0..2 {
            let pay = d.request(
                json!({"action": "pay", "request_id": format!("s{n}-p{k}"), "amount": 100}),
            );
            assert_eq!(pay["code"], 0, "{pay}");
        }
        let close =
            d.request(json!({"action": "close_shift", "request_id": format!("s{n}-close")}));
        assert_eq!(close["data"]["shift_number"], n, "{close}");
        assert_eq!(
            close["data"]["pay"],
            json!({"count": 2, "total": 200}),
            "{close}"
        );
    }
    // Two pays and one close per shift: the last KEEP_SHIFTS shifts stay, nothing older.
    assert_eq!(ledger_rows(&d), 3 * KEEP_SHIFTS);
    // A sale of a kept shift still answers its status; the ledger still takes new sales.
    let pay = d.request(json!({"action": "pay", "request_id": "after", "amount": 100}));
    assert_eq!(pay["code"], 0, "{pay}");
    assert_eq!(ledger_rows(&d), 3 * KEEP_SHIFTS + 1);
}
