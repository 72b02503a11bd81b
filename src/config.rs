//! Configuration: TOML into typed structs, embedded defaults, validation.
//!
//! Unknown keys are refused (`deny_unknown_fields`) so a typo is an error, not a silent
//! default. With no file at all the daemon runs on the embedded defaults: the `sim` provider.
//! This module reads files and checks them; it must not open sockets or contact backends.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::provider;
use crate::secret::Secret;

mod metrics;
mod paysera;
mod providers;

pub use metrics::{MetricsConfig, MetricsListen};

pub use providers::{
    IotPayConfig, LifepayConfig, PayseraConfig, PhonePeConfig, ProvidersConfig, SimConfig,
};

/// Where the packaged daemon looks when neither `--config` nor `POSBRIDGE_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/posbridge/posbridge.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Where the TOML is wrong and why, on one line. The offending line itself is never
    /// shown (toml's own message quotes it, and it may hold a secret such as `key = "..."`).
    #[error("config {path}: line {line}, column {column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config {path}: {key}: {reason}")]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub default_provider: String,
    pub api: ApiConfig,
    pub journal: JournalConfig,
    pub daemon: DaemonConfig,
    pub metrics: MetricsConfig,
    pub providers: ProvidersConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_provider: "sim".into(),
            api: ApiConfig::default(),
            journal: JournalConfig::default(),
            daemon: DaemonConfig::default(),
            metrics: MetricsConfig::default(),
            providers: ProvidersConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub socket: Option<PathBuf>,
    pub allowed_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    /// Connections served at once; one more gets a `busy` answer and is closed.
    pub max_connections: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            socket: None,
            allowed_groups: vec!["posbridge".into()],
            admin_groups: Vec::new(),
            max_connections: 256,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    pub capacity: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig { capacity: 500 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// On SIGTERM, how long running operations may take to finish before the daemon exits
    /// anyway (they are then reconciled at the next start).
    pub shutdown_timeout_ms: u64,
    /// How long an operation may stay unknown (status checks going on) before it is marked
    /// `manual_check` for a person to settle with `posbridge resolve`. The checks go on.
    pub manual_check_after_ms: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            shutdown_timeout_ms: 30_000,
            manual_check_after_ms: 24 * 3600 * 1000,
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Config::parse(&text, path)?;
        config.check_secret_permissions(path)?;
        Ok(config)
    }

    /// Parses and validates TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            reason,
        };
        if provider::known(&self.default_provider).is_none() {
            return Err(invalid(
                "default_provider",
                format!(
                    "{:?} is not a provider; expected one of sim, phonepe, iotpay, paysera, lifepay",
                    self.default_provider
                ),
            ));
        }
        if !self.configured(&self.default_provider) {
            return Err(invalid(
                "default_provider",
                format!("{:?} has no [providers.{0}] section", self.default_provider),
            ));
        }
        if !(1..=1_000_000).contains(&self.journal.capacity) {
            return Err(invalid(
                "journal.capacity",
                "must be from 1 to 1000000".into(),
            ));
        }
        if !(1..=65_536).contains(&self.api.max_connections) {
            return Err(invalid(
                "api.max_connections",
                "must be from 1 to 65536".into(),
            ));
        }
        self.metrics
            .listen()
            .map_err(|r| invalid("metrics.listen", r))?;
        let sim = &self.providers.sim;
        check_currency(&sim.currency).map_err(|r| invalid("providers.sim.currency", r))?;
        check_timeout(sim.timeout_ms).map_err(|r| invalid("providers.sim.timeout_ms", r))?;
        check_schedule(Some(&sim.status_poll_ms))
            .map_err(|r| invalid("providers.sim.status_poll_ms", r))?;
        if let Some(p) = &self.providers.phonepe {
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
        if let Some(p) = &self.providers.iotpay {
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
        if let Some(p) = &self.providers.paysera {
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
        if let Some(p) = &self.providers.lifepay {
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

    /// Whether `provider` can be used with this configuration.
    pub fn configured(&self, provider: &str) -> bool {
        let p = &self.providers;
        match provider {
            "sim" => true,
            "phonepe" => p.phonepe.is_some(),
            "iotpay" => p.iotpay.is_some(),
            "paysera" => p.paysera.is_some(),
            "lifepay" => p.lifepay.is_some(),
            _ => false,
        }
    }

    fn has_inline_secret(&self) -> bool {
        let p = &self.providers;
        p.phonepe.as_ref().is_some_and(|c| c.salt_key.is_some())
            || p.iotpay.as_ref().is_some_and(|c| c.key.is_some())
            || p.paysera.as_ref().is_some_and(|c| c.mac_key.is_some())
            || p.lifepay.as_ref().is_some_and(|c| c.password.is_some())
    }

    /// A file holding secrets must not be readable by others.
    fn check_secret_permissions(&self, path: &Path) -> Result<(), ConfigError> {
        if !self.has_inline_secret() {
            return Ok(());
        }
        let mode = std::fs::metadata(path)
            .map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o007 != 0 {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                key: "(file mode)".into(),
                reason: format!(
                    "holds secrets but is readable by others (mode {:o}); run `chmod o-rwx {}`, \
                     or move the secrets to *_file keys or systemd credentials",
                    mode & 0o777,
                    path.display()
                ),
            });
        }
        Ok(())
    }
}

/// toml's error without its quote of the source line: line and column (1-based) of where it
/// went wrong, and the message on one line.
fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let before = text.as_bytes()[..at].split(|&b| b == b'\n');
    let (mut line, mut column) = (0, 0);
    for part in before {
        line += 1;
        column = String::from_utf8_lossy(part).chars().count() + 1;
    }
    ConfigError::Parse {
        path: path.to_owned(),
        line: line.max(1),
        column: column.max(1),
        message: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_the_embedded_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.default_provider, "sim");
        assert_eq!(c.journal.capacity, 500);
        assert_eq!(c.providers.sim.currency, "INR");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = parse("[journal]\ncapasity = 5\n").unwrap_err().to_string();
        assert!(err.contains("capasity"), "{err}");
        let err = parse("colour = 1\n").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn values_are_validated_with_the_key_named() {
        let err = parse("[journal]\ncapacity = 0\n").unwrap_err().to_string();
        assert!(err.contains("journal.capacity"), "{err}");
        let err = parse("default_provider = \"phonepe\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[providers.phonepe]"), "{err}");
        let err = parse("default_provider = \"cash\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("default_provider"), "{err}");
        let err = parse("[providers.sim]\ncurrency = \"rs\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("providers.sim.currency"), "{err}");
    }

    #[test]
    fn every_design_key_parses() {
        let text = r#"
default_provider = "sim"
[api]
socket = "/run/posbridge/api.sock"
allowed_groups = ["posbridge"]
[journal]
capacity = 500
[providers.phonepe]
base_url = "https://mercury-uat.phonepe.com/enterprise-sandbox"
merchant_id = "M"
store_id = "S"
terminal_id = "T"
salt_key_file = "/run/credentials/posbridge.service/salt_key"
salt_index = 1
provider_id = "P"
solution_type = "DQR_DEVICE"
timeout_ms = 120000
status_poll_ms = [25000, 3000]
[providers.iotpay]
base_url = "https://api.iotpaycloud.com/v1/"
mch_id = "1"
key_file = "/k"
job_no = "cashier"
currency = "CAD"
channel_id = "CC_PAX"
timeout_ms = 90000
status_poll_ms = [2000]
[providers.paysera]
base_url = "https://wallet.paysera.com"
client_id = "c"
mac_key_file = "/m"
spot_id = "7"
currency = "EUR"
timeout_ms = 60000
status_poll_ms = [1000]
[providers.lifepay]
login = "l"
password_file = "/p"
reader = "reader-1"
"#;
        let c = parse(text).unwrap();
        assert_eq!(c.providers.phonepe.unwrap().solution_type, "DQR_DEVICE");
        assert_eq!(c.providers.iotpay.unwrap().channel_id, "CC_PAX");
    }

    #[test]
    fn phonepe_optional_keys_are_checked() {
        let base = "[providers.phonepe]\nbase_url = \"u\"\nmerchant_id = \"M\"\nstore_id = \"S\"\n\
                    terminal_id = \"T\"\nsalt_key_file = \"/k\"\nsalt_index = 1\n";
        let c = parse(&format!(
            "{base}status_id = \"merchant\"\nrequest_timeout_ms = 5000\n"
        ))
        .unwrap();
        assert_eq!(c.providers.phonepe.unwrap().request_timeout_ms, Some(5000));
        let err = parse(&format!("{base}status_id = \"theirs\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("providers.phonepe.status_id"), "{err}");
        let bad_id = base.replace("store_id = \"S\"", "store_id = \"S-1\"");
        let err = parse(&bad_id).unwrap_err().to_string();
        assert!(err.contains("providers.phonepe.store_id"), "{err}");
        let err = parse(&format!("{base}request_timeout_ms = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("providers.phonepe.request_timeout_ms"),
            "{err}"
        );
    }

    #[test]
    fn metrics_are_off_by_default_and_refused_on_a_lan_address() {
        assert_eq!(parse("").unwrap().metrics.listen().unwrap(), None);
        let c = parse("[metrics]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
        assert!(c.metrics.listen().unwrap().is_some());
        let err = parse("[metrics]\nlisten = \"0.0.0.0:9464\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics.listen"), "{err}");
        assert!(err.contains("not a loopback address"), "{err}");
    }

    #[test]
    fn inline_secrets_need_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[providers.lifepay]\nlogin = \"l\"\npassword = \"hunter2\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("readable by others"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        Config::load(&path).unwrap();
    }
}
