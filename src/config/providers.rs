//! The `[providers.*]` sections: one typed struct per backend, with its embedded defaults.
//! Checked by `checks.rs` (called from `Config::validate`); read by each provider's
//! constructor. The config knows the sections' keys, never what a provider does with them.

use std::path::PathBuf;

use serde::Deserialize;

use super::paysera;
use crate::secret::Secret;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    pub sim: SimConfig,
    pub phonepe: Option<PhonePeConfig>,
    pub iotpay: Option<IotPayConfig>,
    pub paysera: Option<PayseraConfig>,
    pub lifepay: Option<LifepayConfig>,
}

impl ProvidersConfig {
    /// The sections a file may hold, `[providers.<name>]`: one per provider, in the order the
    /// provider registry lists them (`provider::registry` checks that they agree).
    pub const SECTIONS: &'static [&'static str] =
        &["sim", "phonepe", "iotpay", "paysera", "lifepay"];

    /// Whether the section of `provider` is there (`sim` always is: it has defaults).
    pub fn configured(&self, provider: &str) -> bool {
        match provider {
            "sim" => true,
            "phonepe" => self.phonepe.is_some(),
            "iotpay" => self.iotpay.is_some(),
            "paysera" => self.paysera.is_some(),
            "lifepay" => self.lifepay.is_some(),
            _ => false,
        }
    }

    /// Whether any section holds a secret itself rather than naming its file.
    pub(super) fn has_inline_secret(&self) -> bool {
        self.secrets().iter().any(|s| s.inline.is_some())
    }

    /// The secret of each section present: where the file says it is (the provider reads it,
    /// and `posbridge config check --secrets`; this room never does).
    pub fn secrets(&self) -> Vec<SecretKey<'_>> {
        fn key<'a>(
            section: &'static str,
            name: &'static str,
            inline: &'a Option<Secret>,
            file: &'a Option<PathBuf>,
        ) -> SecretKey<'a> {
            SecretKey {
                section,
                name,
                inline: inline.as_ref(),
                file: file.as_deref(),
            }
        }
        let mut out = Vec::new();
        if let Some(c) = &self.phonepe {
            out.push(key(
                "providers.phonepe",
                "salt_key",
                &c.salt_key,
                &c.salt_key_file,
            ));
        }
        if let Some(c) = &self.iotpay {
            out.push(key("providers.iotpay", "key", &c.key, &c.key_file));
        }
        if let Some(c) = &self.paysera {
            out.push(key(
                "providers.paysera",
                "mac_key",
                &c.mac_key,
                &c.mac_key_file,
            ));
        }
        if let Some(c) = &self.lifepay {
            out.push(key(
                "providers.lifepay",
                "password",
                &c.password,
                &c.password_file,
            ));
        }
        out
    }
}

/// One section's secret: given inline, as a `*_file`, or neither (a systemd credential).
pub struct SecretKey<'a> {
    /// `providers.<name>`.
    pub section: &'static str,
    /// The key, and the name of the systemd credential that may hold it.
    pub name: &'static str,
    pub inline: Option<&'a Secret>,
    pub file: Option<&'a std::path::Path>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    pub currency: String,
    pub timeout_ms: u64,
    pub status_poll_ms: Vec<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            currency: "INR".into(),
            timeout_ms: 30_000,
            status_poll_ms: vec![200, 1_000, 2_000, 5_000, 15_000],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhonePeConfig {
    pub base_url: String,
    pub merchant_id: String,
    pub store_id: String,
    pub terminal_id: String,
    pub salt_key: Option<Secret>,
    pub salt_key_file: Option<PathBuf>,
    pub salt_index: u32,
    pub provider_id: Option<String>,
    #[serde(default = "default_solution_type")]
    pub solution_type: String,
    pub timeout_ms: Option<u64>,
    pub status_poll_ms: Option<Vec<u64>>,
    /// Optional: bound of one HTTP request (the whole operation is bounded by `timeout_ms`).
    pub request_timeout_ms: Option<u64>,
    /// Obsolete, kept so existing files still load: the status call always names our
    /// merchantTransactionId (`"merchant"`); `"phonepe"` is accepted and means the same.
    pub status_id: Option<String>,
}

fn default_solution_type() -> String {
    "EDC".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IotPayConfig {
    pub base_url: String,
    pub mch_id: String,
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    pub job_no: String,
    pub currency: String,
    #[serde(default = "default_channel")]
    pub channel_id: String,
    pub timeout_ms: Option<u64>,
    pub status_poll_ms: Option<Vec<u64>>,
    /// Optional: how long after the create_order wait ended "no such order" becomes final
    /// (nothing charged). Default 60000, IOT Pay's "last one minute at least"; lower only in
    /// tests.
    pub not_found_final_ms: Option<u64>,
    /// Removed: kept only to refuse it with a message that says why (see `checks.rs`).
    /// `"manual"` (what posbridge always does now) is still accepted.
    pub refund_recheck: Option<String>,
}

fn default_channel() -> String {
    "CC_PAX".into()
}

impl IotPayConfig {
    /// The fields create_order sends as they are, against document 002's table: mchId
    /// String(30), channelId String(24), jobNo String(50) ("merchant login name"; also sent
    /// as refund_order's loginName), each required. An empty one is refused rather than sent:
    /// the signature rule leaves empty values out, so IOT Pay would get a required field
    /// without a value. `Err((key, reason))` names the first key that does not fit.
    pub fn check_fields(&self) -> Result<(), (&'static str, String)> {
        for (key, field, value, max) in [
            ("mch_id", "mchId", &self.mch_id, 30),
            ("channel_id", "channelId", &self.channel_id, 24),
            ("job_no", "jobNo", &self.job_no, 50),
        ] {
            if value.trim().is_empty() {
                return Err((
                    key,
                    format!("is required: IOT Pay's create_order needs {field} with a value"),
                ));
            }
            let n = value.chars().count();
            if n > max {
                return Err((
                    key,
                    format!(
                        "is {n} characters; IOT Pay's {field} is at most {max} (String({max}))"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayseraConfig {
    pub base_url: String,
    pub client_id: String,
    pub mac_key: Option<Secret>,
    pub mac_key_file: Option<PathBuf>,
    /// The spot's id, `7` or `"7"`.
    #[serde(deserialize_with = "paysera::spot_id")]
    pub spot_id: String,
    /// Optional: the spot's code `PAYSERA*<location>:<identifier>` when its place info does
    /// not carry a `location_id`; else read from the spot.
    #[serde(default)]
    pub spot_code: Option<String>,
    pub currency: String,
    pub timeout_ms: Option<u64>,
    pub status_poll_ms: Option<Vec<u64>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifepayConfig {
    pub login: String,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// The paired card reader's id (`posbridge devices`); optional when only one is paired.
    pub reader: Option<String>,
    /// Optional: the currency when a request names none (default RUB, as the LIFE POS
    /// contract: amounts in kopecks).
    pub currency: Option<String>,
    /// Optional: how long a card operation may take, card holder included (default 120000).
    pub timeout_ms: Option<u64>,
    /// Optional: intervals between GET_RESULT checks of an unknown outcome.
    pub status_poll_ms: Option<Vec<u64>>,
}
