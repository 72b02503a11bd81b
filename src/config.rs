//! Configuration: TOML into typed structs, embedded defaults, validation.
//!
//! Unknown keys are refused (`deny_unknown_fields`) so a typo is an error, not a silent
//! default. With no file at all the daemon runs on the embedded defaults: the `sim` provider.
//! This module reads files and checks them; it must not open sockets or contact backends.
//! It knows the `[providers.<name>]` sections and their keys (`providers.rs`, checked by
//! `checks.rs`), never a provider's internals: it imports nothing from `provider`, which
//! reads its section from here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod checks;
mod metrics;
mod paysera;
mod providers;

pub use metrics::{MetricsConfig, MetricsListen};

pub use providers::{
    IotPayConfig, LifepayConfig, PayseraConfig, PhonePeConfig, ProvidersConfig, SecretKey,
    SimConfig,
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
        // The sections this file may hold are the providers (`provider::registry` checks
        // that they agree); which provider is which stays the provider room's business.
        if !ProvidersConfig::SECTIONS.contains(&self.default_provider.as_str()) {
            return Err(invalid(
                "default_provider",
                format!(
                    "{:?} is not a provider; expected one of {}",
                    self.default_provider,
                    ProvidersConfig::SECTIONS.join(", ")
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
        self.providers
            .check()
            .map_err(|(key, reason)| invalid(&key, reason))?;
        Ok(())
    }

    /// Whether `provider` can be used with this configuration.
    pub fn configured(&self, provider: &str) -> bool {
        self.providers.configured(provider)
    }

    /// A file holding secrets must not be readable by others.
    fn check_secret_permissions(&self, path: &Path) -> Result<(), ConfigError> {
        if !self.providers.has_inline_secret() {
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

#[cfg(test)]
mod tests;
