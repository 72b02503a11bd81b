//! What each `[providers.*]` section must hold beyond its type: currencies, timeouts,
//! schedules, one secret or its file, and the backend's own field rules. Each failure names
//! the key (`providers.<name>.<key>`) and says why. Checks only the text of the file: it
//! reads no secret file and contacts no backend.

use super::paysera;
use super::providers::ProvidersConfig;
use crate::secret::Secret;

/// A key and why its value is refused.
type Invalid = (String, String);

fn invalid(key: &str, reason: String) -> Invalid {
    (key.to_owned(), reason)
}

impl ProvidersConfig {
    /// The first key of a section whose value is refused, and why.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        let sim = &self.sim;
        check_currency(&sim.currency).map_err(|r| invalid("providers.sim.currency", r))?;
        check_timeout(sim.timeout_ms).map_err(|r| invalid("providers.sim.timeout_ms", r))?;
        check_schedule(Some(&sim.status_poll_ms))
            .map_err(|r| invalid("providers.sim.status_poll_ms", r))?;
        if let Some(p) = &self.phonepe {
            if !matches!(p.solution_type.as_str(), "EDC" | "DQR_DEVICE") {
                return Err(invalid(
                    "providers.phonepe.solution_type",
                    "must be \"EDC\" or \"DQR_DEVICE\"".into(),
                ));
            }
            one_secret(&p.salt_key, &p.salt_key_file)
                .map_err(|r| invalid("providers.phonepe.salt_key", r))?;
            check_schedule(p.status_poll_ms.as_ref())
                .map_err(|r| invalid("providers.phonepe.status_poll_ms", r))?;
            for (key, ms) in [
                ("timeout_ms", p.timeout_ms),
                ("request_timeout_ms", p.request_timeout_ms),
            ] {
                if let Some(ms) = ms {
                    check_timeout(ms)
                        .map_err(|r| invalid(&format!("providers.phonepe.{key}"), r))?;
                }
            }
            for (key, value) in [
                ("merchant_id", &p.merchant_id),
                ("store_id", &p.store_id),
                ("terminal_id", &p.terminal_id),
            ] {
                // The document: "Special chars allowed: UNDERSCORE".
                let ok = !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(invalid(
                        &format!("providers.phonepe.{key}"),
                        "must be letters, digits and underscores only (as PhonePe issued it)"
                            .into(),
                    ));
                }
            }
            if !matches!(p.status_id.as_deref(), None | Some("phonepe" | "merchant")) {
                return Err(invalid(
                    "providers.phonepe.status_id",
                    "must be \"phonepe\" or \"merchant\"".into(),
                ));
            }
        }
        if let Some(p) = &self.iotpay {
            check_currency(&p.currency).map_err(|r| invalid("providers.iotpay.currency", r))?;
            p.check_fields()
                .map_err(|(key, r)| invalid(&format!("providers.iotpay.{key}"), r))?;
            one_secret(&p.key, &p.key_file).map_err(|r| invalid("providers.iotpay.key", r))?;
            check_schedule(p.status_poll_ms.as_ref())
                .map_err(|r| invalid("providers.iotpay.status_poll_ms", r))?;
            for (key, ms) in [
                ("timeout_ms", p.timeout_ms),
                ("not_found_final_ms", p.not_found_final_ms),
            ] {
                if let Some(ms) = ms {
                    check_timeout(ms)
                        .map_err(|r| invalid(&format!("providers.iotpay.{key}"), r))?;
                }
            }
            match p.refund_recheck.as_deref() {
                None | Some("manual") => {}
                Some(other) => {
                    return Err(invalid(
                        "providers.iotpay.refund_recheck",
                        format!(
                            "{other:?} is no longer supported: re-sending refund_order after a lost \
                             answer can refund the customer twice (IOT Pay documents no refund query \
                             and no deduplication of mchRefundNo). Delete this key: a lost refund \
                             answer now always waits for a manual check in the IOT Pay portal \
                             (docs/providers.md)"
                        ),
                    ))
                }
            }
        }
        if let Some(p) = &self.paysera {
            check_currency(&p.currency).map_err(|r| invalid("providers.paysera.currency", r))?;
            paysera::check_spot_id(&p.spot_id)
                .map_err(|r| invalid("providers.paysera.spot_id", r))?;
            if let Some(code) = &p.spot_code {
                paysera::check_spot_code(code)
                    .map_err(|r| invalid("providers.paysera.spot_code", r))?;
            }
            one_secret(&p.mac_key, &p.mac_key_file)
                .map_err(|r| invalid("providers.paysera.mac_key", r))?;
            check_schedule(p.status_poll_ms.as_ref())
                .map_err(|r| invalid("providers.paysera.status_poll_ms", r))?;
        }
        if let Some(p) = &self.lifepay {
            one_secret(&p.password, &p.password_file)
                .map_err(|r| invalid("providers.lifepay.password", r))?;
            if let Some(c) = &p.currency {
                check_currency(c).map_err(|r| invalid("providers.lifepay.currency", r))?;
            }
            if let Some(ms) = p.timeout_ms {
                check_timeout(ms).map_err(|r| invalid("providers.lifepay.timeout_ms", r))?;
            }
            check_schedule(p.status_poll_ms.as_ref())
                .map_err(|r| invalid("providers.lifepay.status_poll_ms", r))?;
        }
        Ok(())
    }
}

fn check_currency(c: &str) -> Result<(), String> {
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "{c:?} is not an ISO 4217 code (three capital letters)"
        ))
    }
}

fn check_timeout(ms: u64) -> Result<(), String> {
    if (1..=3_600_000).contains(&ms) {
        Ok(())
    } else {
        Err("must be from 1 to 3600000 milliseconds".into())
    }
}

fn check_schedule(s: Option<&Vec<u64>>) -> Result<(), String> {
    match s {
        Some(list) if list.is_empty() => Err("must list at least one interval".into()),
        Some(list) if list.contains(&0) => Err("intervals must be above 0".into()),
        _ => Ok(()),
    }
}

fn one_secret<T>(inline: &Option<Secret>, file: &Option<T>) -> Result<(), String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err("give the secret or the *_file key, not both".into()),
        _ => Ok(()),
    }
}
