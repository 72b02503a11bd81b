//! Issue 9's kill -9 loop: for each of the four providers (PhonePe, IOT Pay, Paysera, the
//! card-reader route), the real daemon over its real socket against its replica or the
//! emulated reader, a POS sending sales (and refunds where the provider has them) with unique
//! request_ids, and SIGKILL at a random moment (right after sending, mid backend call, anywhere,
//! right after the answer) followed by a restart, until each provider has had `KILL_LOOP_KILLS`
//! kills (default 50). Then the backend's own record is set against get_result for every
//! request_id (tests/common/kill_loop.rs) and one line per provider is printed. Seeded:
//! `KILL_LOOP_SEED=<n>` repeats a run's choices (the timing of a loaded machine still varies).

mod common;

#[path = "kill_loop/iotpay.rs"]
mod iotpay;
#[path = "kill_loop/lifepay.rs"]
mod lifepay;
#[path = "kill_loop/paysera.rs"]
mod paysera;
#[path = "kill_loop/phonepe.rs"]
mod phonepe;

use std::time::Instant;

use common::kill_loop::{run, Report, Rig, Rng, Seek};

/// `KILL_LOOP_SEED`, else one from the wall clock (which only seeds the RNG here).
#[allow(clippy::disallowed_methods)]
fn seed() -> u64 {
    env_number("KILL_LOOP_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    })
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
    })
}

/// Starts a provider's rig and runs the loop on it in its own thread.
fn spawn(
    n: u64,
    seed: u64,
    kills: usize,
    start: fn() -> Box<dyn Rig>,
) -> std::thread::JoinHandle<Report> {
    std::thread::spawn(move || {
        let mut rig = start();
        let mut rng = Rng::new(seed ^ (n.wrapping_mul(0x2545_f491_4f6c_dd1d)));
        run(rig.as_mut(), kills, &mut rng, Seek::HitsAndRecovery)
    })
}

#[test]
fn kill9_loop_over_all_four_providers_loses_nothing_and_charges_nothing_twice() {
    let began = Instant::now();
    let seed = seed();
    let kills = env_number("KILL_LOOP_KILLS").unwrap_or(50) as usize;
    println!(
        "kill-loop seed {seed} (repeat with KILL_LOOP_SEED={seed}), {kills} kills per provider"
    );
    let starts: [fn() -> Box<dyn Rig>; 4] = [
        || Box::new(phonepe::start()),
        || Box::new(iotpay::start()),
        || Box::new(paysera::start()),
        || Box::new(lifepay::start()),
    ];
    let loops: Vec<_> = starts
        .into_iter()
        .enumerate()
        .map(|(n, start)| spawn(n as u64, seed, kills, start))
        .collect();
    let reports: Vec<Report> = loops
        .into_iter()
        .map(|h| h.join().expect("a provider's loop panicked"))
        .collect();
    for r in &reports {
        println!("{}", r.line());
        for p in &r.problems {
            println!("  {p}");
        }
        for u in &r.unknown_why {
            println!("  left unknown: {u}");
        }
    }
    let total: usize = reports.iter().map(|r| r.kills).sum();
    println!(
        "kill-loop total: {total} kills in {:.1} s (seed {seed})",
        began.elapsed().as_secs_f64()
    );
    for r in &reports {
        assert!(r.kills >= kills, "{}", r.line());
        assert_eq!(r.double, 0, "double charges (seed {seed}): {}", r.line());
        assert_eq!(r.lost, 0, "lost sales (seed {seed}): {}", r.line());
        assert_eq!(r.changed, 0, "answers changed (seed {seed}): {}", r.line());
        assert_eq!(r.unknown, 0, "left unknown (seed {seed}): {}", r.line());
        r.assert_hits();
    }
}

/// Issue 16's "status blind" phase, PhonePe only: the replica's status API loses each sale for
/// 45 checks after finding it once (tests/kill_loop/phonepe.rs, `start_blind`), across kill -9s
/// at random moments. Every charged sale whose evidence was journaled ends approved (never "not
/// charged"), none is charged twice, none is lost, and nothing is left unknown; one whose only
/// evidence a kill cut off before its journal write is the gap no client can close (bounded
/// below). `KILL_LOOP_BLIND_KILLS` (default 20).
#[test]
fn kill9_loop_phonepe_status_blind_never_answers_not_charged_for_a_charged_sale() {
    let seed = seed();
    let kills = env_number("KILL_LOOP_BLIND_KILLS").unwrap_or(20) as usize;
    println!(
        "kill-loop status-blind seed {seed} (repeat with KILL_LOOP_SEED={seed}), {kills} kills"
    );
    let mut rig = phonepe::start_blind();
    let r = run(&mut rig, kills, &mut Rng::new(seed), Seek::HitsAndRecovery);
    println!("{} (status blind)", r.line());
    for p in &r.problems {
        println!("  {p}");
    }
    for u in &r.unknown_why {
        println!("  left unknown: {u}");
    }
    assert!(r.kills >= kills, "{}", r.line());
    assert_eq!(r.double, 0, "double charges (seed {seed}): {}", r.line());
    // A charged sale answered "not charged" is a failure whenever the journal holds evidence
    // for it. Without any: the kill came between the one answer that showed the sale and its
    // journal write, and the replica then hid it past the window; no client can tell that
    // from "never received" (docs/providers.md, "Evidence: PhonePe"). The kill loop makes that
    // likely (it kills again about when the restarted daemon's first status check returns), so
    // it is allowed, printed, and bounded: a provider that stopped journaling evidence would
    // lose most killed sales.
    let journal = rig.daemon().state.join("journal.sqlite");
    let (mut gap, mut failures) = (Vec::new(), Vec::new());
    for p in r.problems.iter().filter(|p| p.starts_with("lost: ")) {
        let id = p["lost: ".len()..].split(' ').next().unwrap_or_default();
        match kill_loop_evidence(&journal, id) {
            Some(false) if p.contains("charged, final answer") => gap.push(id.to_owned()),
            _ => failures.push(p.clone()),
        }
    }
    println!("  lost with no evidence journaled (the kill came first): {gap:?}");
    assert!(
        failures.is_empty(),
        "charged sales answered not charged despite journaled evidence, or lost (seed {seed}): \
         {failures:#?}"
    );
    assert!(
        gap.len() <= kills.div_ceil(10),
        "{} sales lost without evidence journaled (at most one per 10 kills is the kill-timing \
         gap; more says evidence is not journaled) (seed {seed}): {gap:?}",
        gap.len()
    );
    assert_eq!(r.changed, 0, "answers changed (seed {seed}): {}", r.line());
    assert_eq!(r.unknown, 0, "left unknown (seed {seed}): {}", r.line());
    r.assert_hits();
}

/// Whether the journal's record of `id` holds evidence (`None`: not in the journal).
fn kill_loop_evidence(journal: &std::path::Path, id: &str) -> Option<bool> {
    let conn = rusqlite::Connection::open(journal).ok()?;
    let op: String = conn
        .query_row(
            "SELECT operation FROM operations WHERE request_id = ?1",
            [id],
            |r| r.get(0),
        )
        .ok()?;
    let op: serde_json::Value = serde_json::from_str(&op).ok()?;
    Some(op["progress"]["evidence"].is_object())
}

/// Issue 16 item 3, Paysera: a customer who approves at random moments (often after the sale's
/// deadline, and even after its order was closed) while the daemon is killed and restarted.
/// At the end, from the replica's ledger: 0 transactions left reserved, 0 confirmed for a sale
/// answered not charged (the loop's `lost`), 0 double, every operation final or
/// `manual_check`.
#[test]
fn kill9_loop_paysera_late_customer_leaves_no_money_reserved() {
    let seed = seed();
    let kills = env_number("KILL_LOOP_KILLS").unwrap_or(50) as usize;
    let mut rig = paysera::start_late();
    let r = run(&mut rig, kills, &mut Rng::new(seed ^ 0x16), Seek::Hits);
    println!("{} (seed {seed}, late customer)", r.line());
    for p in &r.problems {
        println!("  {p}");
    }
    let reserved = rig.left_reserved();
    assert!(
        reserved.is_empty(),
        "{} transactions left reserved (seed {seed}): {reserved:?}",
        reserved.len()
    );
    assert!(r.kills >= kills, "{}", r.line());
    assert_eq!(r.double, 0, "double charges (seed {seed}): {}", r.line());
    assert_eq!(
        r.lost,
        0,
        "lost or charged-but-not-charged (seed {seed}): {}",
        r.line()
    );
    assert_eq!(r.changed, 0, "answers changed (seed {seed}): {}", r.line());
    let not_manual: Vec<_> = r
        .unknown_why
        .iter()
        .filter(|u| !u.contains("needs a person"))
        .collect();
    assert!(
        not_manual.is_empty(),
        "left unknown (seed {seed}): {not_manual:?}"
    );
}
