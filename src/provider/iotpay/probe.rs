//! The doctor's signed probe of IOT Pay: one query_order for an order number no sale ever
//! gets, to learn whether IOT Pay accepts our signature and whether its answers verify under
//! `providers.iotpay.key`. A sale whose answers do not verify is never trusted and stays
//! unknown, so a wrong key or mch_id (or a signing scheme that differs from ours) would strand
//! every sale; this makes it visible before the first customer. It moves no money and must
//! not log or return the key.

use std::time::Duration;

use reqwest::Method;

use super::answer::{self, Call, Reading};
use super::wire::{self, Merchant, Problem};
use crate::config::IotPayConfig;
use crate::provider::http::Http;

/// The order number the probe asks about: 30 characters, letters and digits, and never one of
/// ours (ours are `P`/`R` + hexadecimal digits; this has `O`, `S`, `I`, ...).
pub const PROBE_ORDER_NO: &str = "POSBRIDGEDOCTORPROBE0000000000";

/// What the probe found.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// A signed answer that verifies (what it said, e.g. "no such order").
    Verified(String),
    /// A verified answer refusing our signature or our merchant id.
    Refused(String),
    /// An answer without a valid `sign`: the key or mch_id is wrong, or the schemes differ.
    BadSignature(String),
    /// Not IOT Pay's JSON, or no answer at all.
    NoAnswer(String),
    /// The key could not be read.
    NoKey(String),
}

/// Asks IOT Pay query_order for [`PROBE_ORDER_NO`], signed as every sale is.
pub async fn probe(cfg: &IotPayConfig, timeout: Duration) -> Probe {
    let key = match crate::secret::resolve(
        "providers.iotpay",
        "key",
        cfg.key.as_ref(),
        cfg.key_file.as_deref(),
    ) {
        Ok(k) => k,
        Err(e) => return Probe::NoKey(e.to_string()),
    };
    let merchant = Merchant {
        mch_id: cfg.mch_id.clone(),
        job_no: cfg.job_no.clone(),
        channel_id: cfg.channel_id.clone(),
        key,
    };
    let http = match Http::new("IOT Pay", &cfg.base_url, timeout) {
        Ok(h) => h,
        Err(e) => return Probe::NoAnswer(e.to_string()),
    };
    let params = wire::query_order(&merchant, PROBE_ORDER_NO);
    let req = http
        .request(Method::POST, "/query_order")
        .form(&wire::form(&params));
    let body = match http.send(req).await {
        Ok(reply) => reply.body,
        Err(e) => return Probe::NoAnswer(e.to_string()),
    };
    let map = match wire::check(&body, &merchant.key) {
        Ok(map) => map,
        Err(Problem::Signature(e)) => return Probe::BadSignature(e.to_string()),
        Err(Problem::Garbage) => {
            return Probe::NoAnswer(format!(
                "the answer is not JSON: {}",
                crate::provider::http::snippet(&body)
            ))
        }
    };
    match answer::read_order(&map, Call::Query, PROBE_ORDER_NO) {
        Reading::NotFound => Probe::Verified("no such order, as expected".into()),
        Reading::Refused(msg) if answer::is_sign_error(&msg) || answer::is_merchant_error(&msg) => {
            Probe::Refused(msg)
        }
        Reading::Refused(msg) => Probe::Verified(format!("refused: {msg}")),
        other => Probe::Verified(format!("{other:?}").chars().take(120).collect()),
    }
}
