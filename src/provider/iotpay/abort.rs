//! A cancel of an IOT Pay sale named by its request_id (the cashier's "cancel" while the sale
//! waits at the PAX terminal). IOT Pay's document (seeds 002) has create_order and query_order
//! only: no call cancels a sale, so posbridge sends none. It only reads the order
//! (query_order, by the pay's own mchOrderNo from the journal) and answers what is true: paid
//! -> `already_completed` (refund it); ended unpaid -> `declined`, nothing charged, nothing to
//! cancel; anything else (still at the terminal, not found yet, no clear answer) -> a refusal,
//! `not_supported`, that tells the cashier to press cancel on the PAX terminal. It never
//! claims that anything was cancelled, and the sale's own answer is left to the sale.

use super::{Asked, IotPay};
use crate::provider::{Failure, OpKind, Operation, Outcome};

fn press_cancel_on_the_terminal(what: &str) -> Failure {
    Failure::new(
        "not_supported",
        format!(
            "IOT Pay has no cancel call: posbridge cannot stop a sale on the PAX terminal \
             ({what}). Press cancel on the terminal; the sale's own answer (get_result) says \
             how it ended. Nothing was cancelled from here."
        ),
    )
}

impl IotPay {
    /// The abort `op` (a cancel whose primary names the pay by request_id): reads only.
    pub(super) async fn abort(&self, op: &Operation) -> Outcome {
        let Some(pay_id) = op.primary.as_ref().and_then(|p| p.backend_id.clone()) else {
            return Outcome::Failed(Failure::new(
                "invalid_request",
                "primary_transaction: posbridge has no IOT Pay sale by that request_id in its \
                 journal. IOT Pay has no cancel call: press cancel on the PAX terminal.",
            ));
        };
        // The order as the sale itself would read it: the pay's mchOrderNo, the cancel's own
        // request_id (whatever this read witnesses is the cancel's, not the sale's).
        let mut pay = op.clone();
        pay.kind = OpKind::Pay;
        pay.backend_id = pay_id;
        pay.amount = op.primary.as_ref().map(|p| p.amount);
        match self.ask(&pay).await {
            Asked::Settled(Outcome::Approved(_)) => Outcome::Failed(Failure::new(
                "already_completed",
                "Too late: the customer has already paid this sale at the terminal (IOT Pay \
                 shows the order paid), so it cannot be cancelled; refund it instead.",
            )),
            Asked::Settled(Outcome::Failed(f)) => Outcome::Failed(Failure::new(
                "declined",
                format!(
                    "The sale did not go through ({}): nothing was charged and there is \
                     nothing to cancel.",
                    f.message
                ),
            )),
            Asked::Settled(Outcome::Unknown(f)) => {
                Outcome::Failed(press_cancel_on_the_terminal(&f.message))
            }
            Asked::Settled(_) | Asked::NoOrder => Outcome::Failed(press_cancel_on_the_terminal(
                "IOT Pay does not show the order yet",
            )),
            Asked::Refused(msg) => Outcome::Failed(press_cancel_on_the_terminal(&msg)),
        }
    }
}
