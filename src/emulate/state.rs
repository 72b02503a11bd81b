//! The emulator's state file (`--state FILE`): its serial number, the card reader's last 500
//! results (`--keep-results`), their numbering (link protocol version 3: the result store's id
//! and the next operation number), its charge counter and the open shift. Written atomically (temp file, fsync,
//! rename, fsync of the directory), so a kill -9 leaves the old state or the new, never half.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Results a reader keeps, like the Lifepay QPOS reader (docs/link-protocol.md §9); tests
/// make it smaller with `--keep-results`.
pub const KEEP_RESULTS: usize = 500;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub serial: String,
    /// Approved money movements ever made (sales, refunds, cancels): tests count on it.
    pub charges: u64,
    /// Approved sales since the last close.
    pub shift_count: u32,
    pub shift_total: u64,
    /// Approved refunds and cancels since the last close (SHIFT_TOTALS, version 2).
    pub shift_refund_count: u32,
    pub shift_refund_total: u64,
    pub shift_cancel_count: u32,
    pub shift_cancel_total: u64,
    pub results: VecDeque<Stored>,
    /// The id of this result store (version 3's RESULT_WINDOW): random, never 0, made with
    /// the state file, so a fresh state file is a reader that lost its memory of results.
    pub store: u64,
    /// The number the next stored operation gets; numbers only grow.
    pub next: u64,
}

impl State {
    /// Gives a state from before result numbering (or a fresh one) its store id, and its
    /// results numbers in the order they are kept.
    pub fn number_results(&mut self) {
        if self.store != 0 {
            return;
        }
        self.store = loop {
            let id = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap());
            if id != 0 {
                break id;
            }
        };
        for r in self.results.iter_mut() {
            r.number = self.next;
            self.next += 1;
        }
    }

    /// Keeps `result` as the newest, numbered, and evicts the oldest beyond `keep`.
    pub fn keep(&mut self, mut result: Stored, keep: usize) {
        result.number = self.next;
        self.next += 1;
        self.results.push_back(result);
        self.evict(keep);
    }

    /// Drops the oldest results until at most `keep` are left.
    pub fn evict(&mut self, keep: usize) {
        while self.results.len() > keep {
            self.results.pop_front();
        }
    }

    /// The number of the oldest result held (`next` when none is).
    pub fn oldest(&self) -> u64 {
        self.results.front().map_or(self.next, |r| r.number)
    }
}

/// One finished operation, as the reader answers it again on GET_RESULT or a repeated start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub request_id: String,
    /// The operation's number in this result store (version 3).
    #[serde(default)]
    pub number: u64,
    /// `sale`, `refund`, `cancel`.
    pub operation: String,
    pub amount: u64,
    pub currency: String,
    /// `approved`, `declined`, `error`.
    pub outcome: String,
    pub rrn: Option<String>,
    pub approval_code: Option<String>,
    pub masked_pan: Option<String>,
    pub scheme: Option<String>,
    pub message: String,
    pub at: String,
    /// What the host sent besides the amount, so tests can see it arrived. The password is
    /// never stored: only the first 8 hex digits of its SHA-256, to tell which one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_sha256: Option<String>,
    /// The version 2 details block, as received (`None` from a version 1 host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StoredDetails>,
}

/// A payment request's version 2 details, as the emulated reader stored them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDetails {
    pub sign_on_screen: bool,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub recipient_inn: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
}

pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(path: &Path) -> Store {
        Store {
            path: path.to_owned(),
        }
    }

    /// The state on disk, or a fresh one (with a new serial number) saved right away, so the
    /// serial number is stable from the first start on.
    pub fn load(&self) -> Result<State> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not an emulator state file", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = State {
                    serial: new_serial(&self.path),
                    ..State::default()
                };
                self.save(&state)?;
                Ok(state)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    pub fn serial(&self) -> Result<String> {
        Ok(self.load()?.serial)
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(state)?)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    }
}

/// A new serial number for a new state file (unique enough; stable once stored).
fn new_serial(path: &Path) -> String {
    let mut h = Sha256::new();
    h.update(path.as_os_str().as_encoded_bytes());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.update(d.as_nanos().to_le_bytes());
    }
    h.update(std::process::id().to_le_bytes());
    format_serial(&h.finalize())
}

/// Without a state file or `--serial`: derived from the link path, so it is the same on
/// every start at that path.
pub fn serial_for_link(link: &Path) -> String {
    format_serial(&Sha256::digest(link.as_os_str().as_encoded_bytes()))
}

fn format_serial(hash: &[u8]) -> String {
    let hex: String = hash[..4].iter().map(|b| format!("{b:02X}")).collect();
    format!("EMU{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str) -> Stored {
        Stored {
            request_id: id.into(),
            number: 0,
            operation: "sale".into(),
            amount: 100,
            currency: "RUB".into(),
            outcome: "approved".into(),
            rrn: None,
            approval_code: None,
            masked_pan: None,
            scheme: None,
            message: "Approved".into(),
            at: String::new(),
            login: None,
            password_sha256: None,
            details: None,
        }
    }

    #[test]
    fn a_state_from_before_numbering_is_numbered_in_order_and_evicts_oldest_first() {
        // A state file written before result windows: no store, no next, no numbers.
        let mut old = serde_json::to_value(State {
            results: ["a", "b", "c"].into_iter().map(stored).collect(),
            ..State::default()
        })
        .unwrap();
        for key in ["store", "next"] {
            old.as_object_mut().unwrap().remove(key);
        }
        for r in old["results"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("number");
        }
        let mut state: State = serde_json::from_value(old).unwrap();
        state.number_results();
        assert_ne!(state.store, 0);
        let numbers: Vec<u64> = state.results.iter().map(|r| r.number).collect();
        assert_eq!((numbers, state.next, state.oldest()), (vec![0, 1, 2], 3, 0));
        let store = state.store;
        state.number_results();
        assert_eq!(state.store, store, "numbered once");
        state.keep(stored("d"), 2);
        let kept: Vec<(&str, u64)> = state
            .results
            .iter()
            .map(|r| (r.request_id.as_str(), r.number))
            .collect();
        assert_eq!(kept, [("c", 2), ("d", 3)]);
        assert_eq!((state.oldest(), state.next), (2, 4));
        state.evict(0);
        assert_eq!(state.oldest(), state.next, "nothing held: oldest is next");
    }
}
