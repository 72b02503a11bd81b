//! Accepting a money-moving request: checked against the provider's capabilities and the
//! request's own fields, and turned into the [`Operation`] that is journaled as the intent,
//! with its own backend id. Nothing here writes or contacts anything.

use std::sync::Arc;

use serde_json::Value;

use super::Engine;
use crate::clock::now_rfc3339;
use crate::exchange::{Action, Answer, ErrorKind, Request};
use crate::provider::{self, OpKind, Operation, Primary, Provider};

impl Engine {
    /// Checks a money-moving request and builds its operation, or answers why not. With the
    /// operation comes the provider it runs on until it ends, as configured now.
    pub(super) fn accept(&self, req: Request) -> Result<(Operation, Arc<dyn Provider>), Answer> {
        let providers = self.providers();
        // A refusal echoes the request_id as sent (or none): an id is generated only for an
        // operation that is accepted, since only those are journaled.
        let refuse = |reason: &str, msg: String| {
            Answer::refused(
                req.request_id.clone(),
                req.metadata.clone(),
                ErrorKind::DefaultError,
                reason,
                msg,
            )
        };
        let invalid = |msg: String| refuse("invalid_request", msg);
        let kind = match req.action {
            Action::Pay => OpKind::Pay,
            Action::Refund => OpKind::Refund,
            Action::Cancel => OpKind::Cancel,
            _ => OpKind::CloseShift,
        };
        let primary = match req.primary_transaction {
            None => None,
            Some(map) => match serde_json::from_value::<Primary>(Value::Object(map)) {
                Ok(p) => Some(self.with_backend_id(p)),
                Err(e) => {
                    return Err(invalid(format!(
                        "primary_transaction: must be the data of the original pay ({e})"
                    )))
                }
            },
        };
        let name = match (&req.provider, &primary) {
            (Some(asked), Some(p)) if *asked != p.provider => {
                return Err(invalid(format!(
                    "provider: the original pay went through {:?}, so its {} must too",
                    p.provider,
                    kind.as_str()
                )))
            }
            (Some(asked), _) => asked.clone(),
            (None, Some(p)) => p.provider.clone(),
            (None, None) => providers.default_name().to_owned(),
        };
        let Some(caps) = provider::known(&name) else {
            return Err(invalid(format!(
                "provider: unknown provider {name:?}; expected sim, phonepe, iotpay, paysera or lifepay"
            )));
        };
        let Some(provider) = providers.get(name.as_str()).cloned() else {
            return Err(refuse(
                "provider_unavailable",
                format!(
                    "The {name} provider is not configured on this counter. \
                         Add [providers.{name}] to the configuration."
                ),
            ));
        };
        if !caps.takes(kind, primary.as_ref()) {
            return Err(refuse(
                "not_supported",
                format!("{name} does not support {}.", kind.as_str()),
            ));
        }
        if let Err(msg) = check_params(&req.params) {
            return Err(invalid(msg));
        }
        let op = Operation {
            request_id: req
                .request_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            currency: req
                .currency
                .unwrap_or_else(|| provider.default_currency().to_owned()),
            kind,
            provider: name,
            amount: req.amount,
            metadata: req.metadata,
            params: req.params,
            primary,
            created_at: now_rfc3339(),
            backend_id: provider::new_backend_id(kind),
            progress: Default::default(),
            stages: Default::default(),
        };
        Ok((op, provider))
    }

    /// A reversed pay named only by its request_id (e.g. a cancel sent while the pay is still
    /// running, before the POS has its data) gets its backend id from the journal, when the
    /// journal still has that pay; an abort ([`Primary::is_abort`]) also its progress notes.
    fn with_backend_id(&self, mut p: Primary) -> Primary {
        // Only the journal fills them, never the POS.
        p.pay_notes.clear();
        if p.backend_id.is_some() && !p.is_abort() {
            return p;
        }
        let stored = p
            .request_id
            .as_deref()
            .and_then(|id| self.journal.get(id).ok()?);
        if let Some(entry) = stored.filter(|e| e.provider == p.provider) {
            if let Ok(op) = serde_json::from_str::<Operation>(&entry.operation) {
                if op.kind == OpKind::Pay && !op.backend_id.is_empty() {
                    if p.is_abort() && p.backend_id.as_ref().is_none_or(|b| *b == op.backend_id) {
                        p.pay_notes = serde_json::to_value(&op.progress)
                            .ok()
                            .and_then(|v| v.as_object().cloned())
                            .unwrap_or_default();
                    }
                    p.backend_id.get_or_insert(op.backend_id);
                }
            }
        }
        p
    }
}

/// Provider-independent checks of `params` (provider-specific ones live with each provider).
fn check_params(params: &serde_json::Map<String, Value>) -> Result<(), String> {
    if let Some(v) = params.get("delay_ms") {
        match v.as_u64() {
            Some(ms) if ms <= provider::sim::MAX_DELAY_MS => {}
            _ => {
                return Err(format!(
                    "params.delay_ms: must be an integer from 0 to {}",
                    provider::sim::MAX_DELAY_MS
                ))
            }
        }
    }
    Ok(())
}
