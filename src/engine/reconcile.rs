//! The background reconciler: finds the real outcome of every unknown operation.
//!
//! Each unknown request_id is checked with its provider's status call on that provider's
//! schedule (the last interval repeats) until the outcome is final. Checks run on their own
//! tasks so one slow backend cannot hold up the others; one request_id is never checked twice
//! at once. This module never re-sends an operation: it only asks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::journal::State;

struct Tracked {
    attempts: usize,
    checking: bool,
}

pub async fn run(
    engine: Arc<Engine>,
    mut queue: mpsc::UnboundedReceiver<String>,
    shutdown: CancellationToken,
) {
    let mut due: BinaryHeap<Reverse<(Instant, String)>> = BinaryHeap::new();
    let mut tracked: HashMap<String, Tracked> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, bool)>();
    loop {
        engine.stats().set_reconciling(tracked.len());
        let next = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(id) = queue.recv() => {
                if tracked.contains_key(&id) {
                    continue;
                }
                let Some(first) = delay(&engine, &id, 0) else { continue };
                tracked.insert(id.clone(), Tracked { attempts: 0, checking: false });
                due.push(Reverse((Instant::now() + first, id)));
            }
            Some((id, resolved)) = done_rx.recv() => {
                if resolved {
                    tracked.remove(&id);
                    continue;
                }
                let Some(t) = tracked.get_mut(&id) else { continue };
                t.checking = false;
                t.attempts += 1;
                match delay(&engine, &id, t.attempts) {
                    Some(wait) => due.push(Reverse((Instant::now() + wait, id))),
                    None => { tracked.remove(&id); }
                }
            }
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let Some(Reverse((_, id))) = due.pop() else { continue };
                let Some(t) = tracked.get_mut(&id) else { continue };
                if t.checking {
                    continue;
                }
                t.checking = true;
                let engine = engine.clone();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    let resolved = check(&engine, &id).await;
                    let _ = done.send((id, resolved));
                });
            }
        }
    }
}

/// One status check; `true` when nothing more is to be done for `id`.
async fn check(engine: &Engine, id: &str) -> bool {
    match engine.journal().get(id) {
        Ok(Some(entry)) if entry.state == State::Final => true,
        // Resolved only once the outcome is stored: one found but not recorded (disk full)
        // is checked again later.
        Ok(Some(entry)) => {
            engine.reconcile_once(&entry).await.is_some()
                && matches!(engine.journal().get(id), Ok(Some(e)) if e.state == State::Final)
        }
        Ok(None) => true,
        Err(e) => {
            log::warn!(request_id = id; "reconciliation could not read the journal: {e}");
            false
        }
    }
}

/// The wait before check number `attempt` (0-based), or `None` if `id` needs no checking.
fn delay(engine: &Engine, id: &str, attempt: usize) -> Option<std::time::Duration> {
    let entry = engine.journal().get(id).ok().flatten()?;
    if entry.state == State::Final {
        return None;
    }
    Some(engine.wait_before(&entry, attempt))
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
