//! What the reader route remembers so that a lost result is never read as "nothing was
//! charged" (issue 16, docs/providers.md "Evidence: lifepay"): evidence that the reader has an
//! operation (its link ACK of the START, IN_PROGRESS, DUPLICATE, a stored result) is journaled
//! before it is acted on, and, with a version 3 reader, where the reader's numbering stood
//! just before the START was sent (its result window, docs/link-protocol.md §9). A later
//! RESULT_NOT_FOUND is then read against the window the reader reports now:
//!
//! - the same result store, and the reader still holds every operation numbered from before
//!   the START was sent: it never received it (`Outcome::NotFound`: not charged, unless
//!   evidence says it did receive it; then the engine keeps it unknown);
//! - its oldest held result is newer than that: the result may have been evicted (unknown,
//!   `manual_check`, naming the reader's id for the operation);
//! - another result store (the reader lost its memory): unknown, `manual_check`.
//!
//! Without a recorded window (a version 1 or 2 reader, or an intent from before version 3)
//! a RESULT_NOT_FOUND is `Outcome::NotFound`, as before: not charged only without evidence.
//! Like the rest of the provider it never touches the journal itself (notes go through
//! `Operation::progress`).

use serde_json::{json, Value};

use super::{reader_id, STATUS_WAIT};
use crate::device::link::ResultWindow;
use crate::device::reader::CardReader;
use crate::provider::{Failure, Operation, Outcome};

/// The progress note with the reader's window just before the START: `{"store", "next"}`.
pub const NOTE_WINDOW: &str = "reader_window";

/// Journals that the reader has shown it has the operation (`what`), before the caller acts
/// on that answer. A note the journal could not take is still remembered by the engine for
/// this run, so the caller goes on.
pub async fn witness(op: &Operation, what: &str) {
    if let Err(e) = op.progress.witness(what).await {
        log::warn!(request_id = op.request_id.as_str(), provider = "lifepay";
            "could not journal that {what} ({e}); it is kept in memory while posbridge runs");
    }
}

/// The note recording `window` as it stood before the START.
pub fn window_note(window: &ResultWindow) -> Value {
    json!({"store": window.store.to_string(), "next": window.next.to_string()})
}

/// Where the reader's numbering stood before the START, as journaled: `(store, next)`.
/// Numbers are kept as decimal strings (a u64 does not survive every JSON reader).
fn recorded(op: &Operation) -> Option<(u64, u64)> {
    let note = op.progress.get(NOTE_WINDOW)?;
    let number = |key: &str| note[key].as_str()?.parse::<u64>().ok();
    Some((number("store")?, number("next")?))
}

/// What a RESULT_NOT_FOUND for `op` means (see the module docs); asks the reader for its
/// window when one was recorded before the START.
pub async fn not_found(reader: &CardReader, op: &Operation) -> Outcome {
    let Some(sent) = recorded(op) else {
        return never_started(
            "The card reader has no record of this operation: it never started it, and \
             nothing was charged. Start a new sale with a new request_id.",
        );
    };
    match reader.result_window(STATUS_WAIT).await {
        Ok(Some(now)) => verdict(op, sent, now),
        // The reader speaks version 1 or 2 now (other firmware): as with any old reader.
        Ok(None) => never_started(
            "The card reader has no record of this operation and does not report which \
             results it still holds: it never started it, and nothing was charged. Start a \
             new sale with a new request_id.",
        ),
        Err(e) => Outcome::Unknown(Failure::new(
            "link_lost",
            format!(
                "The card reader has no record of this operation, and could not say which \
                 results it still holds ({e}); it is asked again."
            ),
        )),
    }
}

/// The reading of a RESULT_NOT_FOUND against the window recorded before the START (`sent`:
/// store and next number) and the window now. Only "same store, nothing evicted since" is a
/// "not found" the engine may settle; anything else stays unknown for a person.
pub fn verdict(op: &Operation, sent: (u64, u64), now: ResultWindow) -> Outcome {
    let (store, next) = sent;
    let id = reader_id(op);
    if now.store != store {
        return manual(
            op,
            format!(
                "The card reader's memory of results was replaced since this {} was sent \
                 (result store {store:x}, now {:x}): if the reader received it, its result is \
                 gone from the reader.",
                op.kind.as_str(),
                now.store
            ),
            id,
        );
    }
    if now.next < next {
        return manual(
            op,
            format!(
                "The card reader's operation numbers went back since this {} was sent (next \
                 number {next}, now {}), so which results it holds cannot be told.",
                op.kind.as_str(),
                now.next
            ),
            id,
        );
    }
    if now.oldest > next {
        return manual(
            op,
            format!(
                "The card reader no longer holds results older than its operation number {} \
                 (it keeps only its latest results), and this {} was sent when its next \
                 number was {next}: if the reader received it, its result was evicted.",
                now.oldest,
                op.kind.as_str()
            ),
            id,
        );
    }
    never_started(format!(
        "The card reader holds every operation it received since before this one was sent \
         (from number {next} on) and has no record of it: it never received it, and nothing \
         was charged. Start a new sale with a new request_id."
    ))
}

fn never_started(message: impl Into<String>) -> Outcome {
    Outcome::NotFound(Failure::new("not_processed", message))
}

fn manual(op: &Operation, why: String, id: &str) -> Outcome {
    Outcome::Unknown(Failure::new(
        "manual_check",
        format!(
            "{why} Whether it was charged needs a person: look up the reader's sale id {id} \
             in the Lifepay records (or the reader's report), then settle it with \
             `posbridge resolve {} --charged` or `--not-charged`. Do not take another payment \
             for it until then.",
            op.request_id
        ),
    ))
}
