//! What a verified IOT Pay answer says, read the way the document asks ("Get order status
//! from the response"): paid only when retCode and resCode are both SUCCESS and payOrder.status
//! is 2 or 3. Anything this module does not recognise is [`Reading::Unrecognised`], which the
//! provider treats as "not known yet" (query again), never as a decline. It must not read a
//! clock, log or let a full card number out (receipts go through `receipt.rs`).

use serde_json::{Map, Value};

use super::fields::{as_text, integer, plain, text};
use super::receipt;
use crate::provider::{Approval, Failure};

/// Which call the answer came from: the document defines create_order's answer; query_order's
/// is read the same way, but only the statuses we know to be final end a sale there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Create,
    Query,
}

/// What a verified create_order or query_order answer says about our order. Short-lived, one
/// at a time: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Reading {
    Paid(Approval),
    /// Final, nothing charged: the terminal's decline (payOrder.status 4 or 9, or any status
    /// but 0..=3 in a create_order answer with both codes SUCCESS, as the document says).
    Declined(Failure),
    /// Status 0 or 1 (created, paying), or a status query_order cannot call final. In
    /// create_order's own answer with both codes SUCCESS, 0 and 1 are the document's "else:
    /// error occurs" (002 lines 121-124): never a charge, and not a decline either while the
    /// order may still be running; the text says so, with the terminal's receiptDisp.
    Pending(String),
    /// "No such order" (resCode FAIL, errCode ORDER_NOT_EXIST or retMsg/errDes saying the
    /// *order* does not exist).
    NotFound,
    /// A FAIL without an order, with IOT Pay's words. Its words are never read for a meaning
    /// ("used" is in "refused"): for create_order the provider asks query_order once by our
    /// own number; for query_order it is only a failed question.
    Refused(String),
    /// A shape we do not know (missing codes, both SUCCESS without an order, a paid status
    /// with a FAIL code, another order's number, ...): the outcome stays unknown.
    Unrecognised(String),
}

/// The order an answer carries: payOrder (the document's shape), or, in a query_order answer
/// without payOrder, the answer itself when it holds a `status` and names our mchOrderNo at
/// the top level (a shape the document does not show; read, never left unknown for ever).
/// `Err` when payOrder is there but is not an object, or the order is another one's.
fn order_in<'a>(
    map: &'a Map<String, Value>,
    call: Call,
    our_no: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    let order = match map.get("payOrder") {
        Some(Value::Object(o)) => o,
        Some(Value::Null) | None => {
            let flat = call == Call::Query
                && map.contains_key("status")
                && text(map, "mchOrderNo") == Some(our_no);
            return Ok(flat.then_some(map));
        }
        Some(_) => return Err("payOrder is not an object".into()),
    };
    // Never another order's answer as ours (the number is in payOrder and, in the document's
    // sample, at the top level too).
    if let Some(no) = [text(order, "mchOrderNo"), text(map, "mchOrderNo")]
        .into_iter()
        .flatten()
        .find(|no| *no != our_no)
    {
        return Err(format!("payOrder.mchOrderNo {no:?} is not ours"));
    }
    Ok(Some(order))
}

/// Whether a verified answer shows that our order exists at IOT Pay (any status, any codes):
/// evidence, journaled before the answer is acted on. `Some(what was seen)` for the operator.
pub fn evidence(map: &Map<String, Value>, call: Call, our_no: &str) -> Option<String> {
    let order = order_in(map, call, our_no).ok()??;
    let name = match call {
        Call::Create => "create_order",
        Call::Query => "query_order",
    };
    let status = order
        .get("status")
        .and_then(integer)
        .map_or_else(|| "no status".to_owned(), |s| format!("status {s}"));
    let id = order.get("payOrderId").and_then(as_text);
    Some(format!(
        "{name} answered with order {} ({status})",
        id.map_or_else(|| our_no.to_owned(), |id| plain(&id))
    ))
}

/// Reads a verified answer about the order `our_no`.
pub fn read_order(map: &Map<String, Value>, call: Call, our_no: &str) -> Reading {
    let (ret, res) = (text(map, "retCode"), text(map, "resCode"));
    let codes_known = |c: Option<&str>| matches!(c, Some("SUCCESS" | "FAIL"));
    // A refusal may come without resCode: retCode FAIL says it all.
    let any_fail = ret == Some("FAIL") || res == Some("FAIL");
    if !codes_known(ret) || !(codes_known(res) || (ret == Some("FAIL") && res.is_none())) {
        return Reading::Unrecognised(format!(
            "retCode {:?}, resCode {:?}",
            ret.unwrap_or("(none)"),
            res.unwrap_or("(none)")
        ));
    }
    let both_ok = !any_fail;
    let order = match order_in(map, call, our_no) {
        Ok(order) => order,
        Err(what) => return Reading::Unrecognised(what),
    };
    let Some(order) = order else {
        if both_ok {
            return Reading::Unrecognised("both codes SUCCESS but no payOrder".into());
        }
        let why = reason(map);
        return if is_not_found(map, &why) {
            Reading::NotFound
        } else {
            Reading::Refused(why)
        };
    };
    let extra = receipt::order_extra(order);
    let shown = text(&extra, "receiptDisp").map(plain);
    let Some(status) = order.get("status").and_then(integer) else {
        return Reading::Unrecognised("payOrder without a status".into());
    };
    match status {
        2 | 3 if both_ok => Reading::Paid(receipt::approval(order, &extra)),
        2 | 3 => Reading::Unrecognised(format!("status {status} with a FAIL code")),
        0 | 1 if call == Call::Create && both_ok => Reading::Pending(format!(
            "status {status}, which by the document's rule (paid only with status 2 or 3, \
             \"else: error occurs\") is not a charge{}",
            shown.map_or_else(String::new, |s| format!(": {s}"))
        )),
        0 | 1 => Reading::Pending(format!("status {status}")),
        4 | 9 => Reading::Declined(declined(shown.as_deref(), status)),
        _ if call == Call::Create && both_ok => {
            Reading::Declined(declined(shown.as_deref(), status))
        }
        _ => Reading::Pending(format!("status {status}")),
    }
}

fn declined(shown: Option<&str>, status: i64) -> Failure {
    Failure::new(
        "declined",
        format!(
            "The card payment did not go through: {}.",
            shown.map_or_else(|| format!("IOT Pay order status {status}"), str::to_owned)
        ),
    )
}

/// A refund that is not (yet) a success.
#[derive(Debug, PartialEq)]
pub enum NotRefunded {
    /// Refused with nothing moved.
    Failed(Failure),
    /// Not known: must be checked by a person (IOT Pay has no refund query).
    Unknown(String),
}

/// What a verified refund_order answer says. The document shows no refund answer: a success
/// needs both codes SUCCESS and, when a refundOrder is there, a status of 2 or 3.
pub fn read_refund(map: &Map<String, Value>) -> Result<Approval, NotRefunded> {
    let (ret, res) = (text(map, "retCode"), text(map, "resCode"));
    let refund = match map.get("refundOrder") {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    if ret == Some("FAIL") || res == Some("FAIL") {
        let why = reason(map);
        if is_duplicate(&why) {
            return Err(NotRefunded::Unknown(why));
        }
        return Err(NotRefunded::Failed(Failure::new(
            "declined",
            format!("IOT Pay refused the refund: {why}"),
        )));
    }
    if ret != Some("SUCCESS") || res != Some("SUCCESS") {
        return Err(NotRefunded::Unknown("an answer of an unknown shape".into()));
    }
    match refund.get("status").and_then(integer) {
        None | Some(2 | 3) => {}
        Some(s) => return Err(NotRefunded::Unknown(format!("refund status {s}"))),
    }
    let mut kept = Map::new();
    if let Some(no) = text(&refund, "mchRefundNo").or(text(map, "mchRefundNo")) {
        kept.insert("mch_refund_no".into(), Value::from(no));
    }
    Ok(Approval {
        status: "refunded".into(),
        provider_reference: refund
            .get("refundOrderId")
            .or(map.get("refundOrderId"))
            .and_then(as_text),
        extra: kept,
        ..Approval::default()
    })
}

/// The refusal's words: retMsg (the document's field), else errDes / errCode.
fn reason(map: &Map<String, Value>) -> String {
    plain(
        text(map, "retMsg")
            .or(text(map, "errDes"))
            .or(text(map, "errCode"))
            .unwrap_or("no reason given"),
    )
}

/// "No such order": errCode ORDER_NOT_EXIST, or words about the *order* not existing (a
/// "mchId does not exist" is about the merchant, never a reason to call a sale uncharged).
fn is_not_found(map: &Map<String, Value>, why: &str) -> bool {
    let w = why.to_ascii_lowercase();
    text(map, "errCode") == Some("ORDER_NOT_EXIST")
        || (w.contains("order")
            && !w.contains("mch_id")
            && !w.contains("mchid")
            && (w.contains("not exist") || w.contains("not found") || w.contains("no such")))
}

/// Whether a refund refusal says the number was used before ("duplicate", "already exists",
/// ...). Only for refund_order, which has no query to ask instead: a refusal read as a
/// duplicate stays unknown (a manual check), the safe side of a misreading.
pub fn is_duplicate(why: &str) -> bool {
    let w = why.to_ascii_lowercase();
    !w.contains("not exist")
        && ["duplicate", "already", "exist", "repeat", "used"]
            .iter()
            .any(|k| w.contains(k))
}

/// Whether a refusal is about our signature (wrong key or mchId).
pub fn is_sign_error(why: &str) -> bool {
    why.to_ascii_lowercase().contains("sign")
}

/// Whether a refusal is about our merchant account (mchId unknown, merchant disabled).
pub fn is_merchant_error(why: &str) -> bool {
    let w = why.to_ascii_lowercase();
    w.contains("mchid") || w.contains("mch_id") || w.contains("merchant")
}
