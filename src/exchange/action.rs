//! What a request asks for, by its v1 name.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Pay,
    Refund,
    Cancel,
    CloseShift,
    GetResult,
    Status,
    /// posbridge extension: the newest results in the journal, for `posbridge results`.
    Results,
    /// posbridge extension: paired devices and their link state, for `posbridge devices`.
    Devices,
    /// posbridge extension (admin): pair the device at `address` as `role`.
    Pair,
    /// posbridge extension (admin): forget the paired device `id`.
    Unpair,
    /// posbridge extension (admin): list BLE devices advertising the link service, with RSSI.
    Scan,
    /// posbridge extension (admin): settle an unknown outcome on an operator's word
    /// (`decision` charged or not_charged, and a `note`).
    Resolve,
}

impl Action {
    /// Every action, in the order the v1 names are listed.
    pub const ALL: [Action; 12] = [
        Action::Pay,
        Action::Refund,
        Action::Cancel,
        Action::CloseShift,
        Action::GetResult,
        Action::Status,
        Action::Results,
        Action::Devices,
        Action::Pair,
        Action::Unpair,
        Action::Scan,
        Action::Resolve,
    ];

    /// The action whose v1 name is `s` (the LIFE POS names are the API's to map).
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pay => "pay",
            Action::Refund => "refund",
            Action::Cancel => "cancel",
            Action::CloseShift => "close_shift",
            Action::GetResult => "get_result",
            Action::Status => "status",
            Action::Results => "results",
            Action::Devices => "devices",
            Action::Pair => "pair",
            Action::Unpair => "unpair",
            Action::Scan => "scan",
            Action::Resolve => "resolve",
        }
    }

    /// Needs `api.admin_groups` when that is set: money operations and (un)pairing.
    pub fn needs_admin(self) -> bool {
        self.is_operation()
            || matches!(
                self,
                Action::Pair | Action::Unpair | Action::Scan | Action::Resolve
            )
    }

    /// Answered by the device manager rather than the engine.
    pub fn is_device_action(self) -> bool {
        matches!(
            self,
            Action::Devices | Action::Pair | Action::Unpair | Action::Scan
        )
    }

    /// Operations are journaled and executed once; the other actions only read.
    pub fn is_operation(self) -> bool {
        matches!(
            self,
            Action::Pay | Action::Refund | Action::Cancel | Action::CloseShift
        )
    }

    /// Pay, refund and cancel carry an `amount`.
    pub fn needs_amount(self) -> bool {
        matches!(self, Action::Pay | Action::Refund | Action::Cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_v1_name_parses_back_to_its_action() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::json!(a.as_str())
            );
        }
        assert_eq!(Action::parse("transaction.pay"), None);
    }
}
