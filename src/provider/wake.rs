//! Waking an operation that waits inside a provider (for its customer, or between status
//! checks) when another operation of the same provider has changed what it waits for: an
//! abort that cancelled a running pay wakes that pay, so it reads the backend's answer at
//! once instead of at its next scheduled check. In memory only, keyed by the pay's backend id:
//! a wake-up is a hint to look now, never an outcome (the waiting operation still asks its
//! backend, which alone says what happened). It touches no journal and no backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The operations waiting now, by key.
#[derive(Default)]
pub struct Wakers(Mutex<HashMap<String, Arc<Notify>>>);

/// One waiting operation's registration; dropped when it stops waiting.
pub struct Waiting<'a> {
    wakers: &'a Wakers,
    key: String,
    notify: Arc<Notify>,
}

impl Wakers {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `key` as waiting. A wake-up that comes before the wait is kept for it.
    pub fn watch(&self, key: &str) -> Waiting<'_> {
        let notify = Arc::new(Notify::new());
        self.map().insert(key.to_owned(), notify.clone());
        Waiting {
            wakers: self,
            key: key.to_owned(),
            notify,
        }
    }

    /// Whether an operation waits under `key` now.
    pub fn is_waiting(&self, key: &str) -> bool {
        self.map().contains_key(key)
    }

    /// Wakes the operation waiting under `key`, if one is (then true).
    pub fn wake(&self, key: &str) -> bool {
        match self.map().get(key) {
            Some(notify) => {
                notify.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Waiting<'_> {
    /// Sleeps `wait`, or less when woken. True when woken.
    pub async fn sleep(&self, wait: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = self.notify.notified() => true,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut map = self.wakers.map();
        // Only its own registration: a later one under the same key stays.
        if map
            .get(&self.key)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wake_up_before_the_wait_is_kept_and_a_finished_wait_is_forgotten() {
        let wakers = Wakers::default();
        let waiting = wakers.watch("P1");
        wakers.wake("P1");
        assert!(waiting.sleep(Duration::from_secs(600)).await);
        drop(waiting);
        assert!(wakers.map().is_empty());
        assert!(!wakers.wake("P1"), "nobody waits: nothing happens");
    }
}
