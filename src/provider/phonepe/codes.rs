//! What each code of an init (and backToSource) answer means for the sale: one table, checked
//! against every code the PhonePe init document lists ("Response Codes"). Pure data; the
//! provider decides what to do with the meaning. A code that is not in the table is never
//! taken as "nothing was charged": the sale is followed with status checks.

/// The meaning of one answer code to a money-moving call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// PhonePe took the request: follow it with status checks.
    Accepted,
    /// PhonePe already holds this transaction id. Never this request's answer: the status of
    /// our own id decides, else the outcome is unknown.
    Duplicate,
    /// PhonePe refused the request before creating anything: nothing was charged.
    Refused {
        /// The API's `reason`.
        reason: &'static str,
        /// For the cashier (PhonePe's code and message are added).
        what: &'static str,
    },
}

use Meaning::*;

const fn refused(reason: &'static str, what: &'static str) -> Meaning {
    Refused { reason, what }
}

const NOT_CHARGED: &str = "Nothing was charged.";

/// Every code of the document's "Response Codes" table, and the backToSource refusal the
/// document does not cover (marked).
pub const CODES: &[(&str, Meaning)] = &[
    ("SUCCESS", Accepted),
    (
        "SOLUTION_NOT_ENABLED",
        refused(
            "provider_unavailable",
            "PhonePe has not enabled this payment solution (EDC Sale API) for the merchant; \
             ask PhonePe to enable it, or check solution_type.",
        ),
    ),
    (
        "UNAUTHORIZED",
        refused(
            "unauthorized",
            "PhonePe refused the request signature: check salt_key and salt_index.",
        ),
    ),
    (
        "INVALID_MERCHANT_ID",
        refused(
            "invalid_request",
            "PhonePe does not know this merchant or it is not active: check merchant_id.",
        ),
    ),
    (
        "INVALID_STORE_ID",
        refused(
            "invalid_request",
            "PhonePe does not know this store: check store_id.",
        ),
    ),
    (
        "INVALID_TERMINAL_ID",
        refused(
            "invalid_request",
            "PhonePe does not know this terminal: check terminal_id.",
        ),
    ),
    ("DUPLICATE_TRANSACTION_ID", Duplicate),
    (
        "INVALID_TRANSACTION_ID",
        refused(
            "invalid_request",
            "PhonePe refused the transaction id's format.",
        ),
    ),
    (
        "INVALID_INTEGRATION_MAPPING_TYPE",
        refused(
            "invalid_request",
            "PhonePe refused params.integration_mapping_type.",
        ),
    ),
    (
        "INVALID_SHORTCODE_LENGTH",
        refused(
            "invalid_request",
            "PhonePe refused the length of params.short_order_id.",
        ),
    ),
    (
        "INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL",
        refused(
            "provider_unavailable",
            "The PhonePe terminal is not in integrated mode; switch it to integrated mode or \
             ask PhonePe.",
        ),
    ),
    (
        "SHORT_CODE_IS_REQUIRED",
        refused(
            "invalid_request",
            "PhonePe needs params.short_order_id for integration_mapping_type OPEN.",
        ),
    ),
    (
        "SHORT_CODE_NOT_REQUIRED",
        refused(
            "invalid_request",
            "PhonePe takes params.short_order_id only with integration_mapping_type OPEN.",
        ),
    ),
    (
        "INVALID_TERMINAL_HANDOVER_TIME",
        refused(
            "invalid_request",
            "PhonePe refused the handover time (params.handover_seconds).",
        ),
    ),
    (
        "INVALID_AMOUNT",
        refused("invalid_request", "PhonePe refused the amount."),
    ),
    (
        "INVALID_PAYMENT_MODES",
        refused("invalid_request", "PhonePe refused params.payment_modes."),
    ),
    // Not in the init document: backToSource's answer when the amount is more than is left
    // to refund, or an earlier refund is still pending (shared/providers.md).
    (
        "EXCESS_REFUND_AMOUNT",
        refused(
            "invalid_request",
            "PhonePe refused the refund: the amount is more than is left to refund, or an \
             earlier refund of this sale is still being processed.",
        ),
    ),
];

/// The meaning of `code`, if the table has it.
pub fn meaning(code: &str) -> Option<Meaning> {
    CODES.iter().find(|(c, _)| *c == code).map(|(_, m)| *m)
}

/// The suffix every refusal message ends with.
pub fn not_charged() -> &'static str {
    NOT_CHARGED
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "Response Codes" table of the init document, in its order.
    const DOCUMENTED: [&str; 16] = [
        "SUCCESS",
        "SOLUTION_NOT_ENABLED",
        "UNAUTHORIZED",
        "INVALID_MERCHANT_ID",
        "INVALID_STORE_ID",
        "INVALID_TERMINAL_ID",
        "DUPLICATE_TRANSACTION_ID",
        "INVALID_TRANSACTION_ID",
        "INVALID_INTEGRATION_MAPPING_TYPE",
        "INVALID_SHORTCODE_LENGTH",
        "INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL",
        "SHORT_CODE_IS_REQUIRED",
        "SHORT_CODE_NOT_REQUIRED",
        "INVALID_TERMINAL_HANDOVER_TIME",
        "INVALID_AMOUNT",
        "INVALID_PAYMENT_MODES",
    ];

    #[test]
    fn every_documented_code_has_a_meaning() {
        for code in DOCUMENTED {
            let m = meaning(code).unwrap_or_else(|| panic!("{code} has no meaning"));
            let expected = match code {
                "SUCCESS" => Accepted,
                "DUPLICATE_TRANSACTION_ID" => Duplicate,
                _ => {
                    let Refused { reason, what } = m else {
                        panic!("{code} must be a refusal, is {m:?}")
                    };
                    assert!(!what.is_empty());
                    let want = match code {
                        "UNAUTHORIZED" => "unauthorized",
                        "SOLUTION_NOT_ENABLED" | "INTEGRATEDMODE_NOT_ENABLED_ON_TERMINAL" => {
                            "provider_unavailable"
                        }
                        _ => "invalid_request",
                    };
                    assert_eq!(reason, want, "{code}");
                    m
                }
            };
            assert_eq!(m, expected, "{code}");
        }
        // The only codes that may mean the sale exists at PhonePe are never refusals.
        let maybe_charged: Vec<&str> = CODES
            .iter()
            .filter(|(_, m)| !matches!(m, Refused { .. }))
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(maybe_charged, ["SUCCESS", "DUPLICATE_TRANSACTION_ID"]);
    }

    #[test]
    fn an_unknown_code_has_no_meaning_so_it_is_followed() {
        assert_eq!(meaning("INTERNAL_SERVER_ERROR"), None);
        assert_eq!(meaning("PAYMENT_PENDING"), None);
        assert_eq!(meaning(""), None);
    }

    #[test]
    fn the_table_has_each_code_once() {
        let mut seen = std::collections::HashSet::new();
        for (c, _) in CODES {
            assert!(seen.insert(*c), "{c} twice");
        }
    }
}
