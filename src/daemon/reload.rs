//! SIGHUP (`systemctl reload posbridge`): the configuration file and the secrets it names are
//! read again and, when they are good, put in force for new operations.
//!
//! What a reload changes: the provider sections and their secrets (`*_file` keys, systemd
//! credentials), the default provider, the providers' timeouts and schedules, and the
//! `[daemon]` bounds. What it cannot change while the daemon serves (the socket and who may
//! use it, the journal's capacity, the metrics endpoint) is named in the log and in STATUS as
//! taking effect at the next restart; the running daemon keeps what it started with. A file
//! that does not load, or a provider that cannot be set up from it (an unreadable secret), is
//! refused whole: the previous configuration stays in force, and the log and STATUS say why.
//! Running operations finish on the provider they started with; the socket is never touched.
//! This room only reads and swaps; it must not close anything nor contact a backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::device::manager::DeviceManager;
use crate::device::screen::Screen;
use crate::engine::{Engine, Providers};
use crate::{paths, provider};

/// What a reload needs besides the engine, kept from start-up.
pub(super) struct Reloader {
    /// `--config`, as given (the file is looked up again as at start-up).
    pub flag: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub devices: Arc<DeviceManager>,
    pub screen: Arc<dyn Screen>,
    /// The configuration in force (restart-only settings as they were at start-up).
    pub config: Config,
    /// What the last reload left to say in STATUS until the next one: a refusal, or the
    /// settings waiting for a restart.
    pub note: Option<String>,
}

impl Reloader {
    /// Reads the file again and puts it in force, or refuses it. Returns the one-line summary
    /// for the log and STATUS; [`Reloader::note`] keeps what STATUS must go on saying.
    pub fn reload(&mut self, engine: &Engine) -> String {
        let path = paths::config_file(self.flag.clone());
        let shown = path
            .as_deref()
            .map_or("the embedded defaults".into(), |p| p.display().to_string());
        match self.load(path.as_deref()) {
            Err(why) => {
                let why = one_line(&why);
                log::error!("reload refused: {why}; the previous configuration stays in force");
                self.note = Some(format!(
                    "last reload refused ({why}); the previous configuration is in force"
                ));
                format!("reload refused: {why}; the previous configuration stays in force")
            }
            Ok((mut new, providers)) => {
                let waiting = restart_only(&self.config, &new);
                for key in &waiting {
                    log::warn!(
                        "reload: {key} changed in {shown}; it takes effect at the next restart \
                         (the running daemon keeps its value)"
                    );
                }
                new.api = self.config.api.clone();
                new.journal = self.config.journal.clone();
                new.metrics = self.config.metrics.clone();
                let mut names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
                names.sort_unstable();
                let summary = format!(
                    "reloaded {shown}: providers {}, default {}",
                    names.join(", "),
                    new.default_provider
                );
                engine.reload_providers(Providers::new(providers, new.default_provider.clone()));
                engine.set_manual_check_after(std::time::Duration::from_millis(
                    new.daemon.manual_check_after_ms,
                ));
                self.config = new;
                log::info!("{summary}");
                self.note = (!waiting.is_empty())
                    .then(|| format!("{} take effect at the next restart", waiting.join(", ")));
                match &self.note {
                    Some(note) => format!("{summary}; {note}"),
                    None => summary,
                }
            }
        }
    }

    /// The new configuration and its providers, or why not (one message, no secret in it).
    fn load(
        &self,
        path: Option<&Path>,
    ) -> anyhow::Result<(Config, Vec<Arc<dyn provider::Provider>>)> {
        let config = match path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let providers =
            provider::from_config(&config, &self.state_dir, &self.devices, &self.screen)?;
        Ok((config, providers))
    }
}

/// The settings a reload cannot change that differ between `running` and `new`.
fn restart_only(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&running.api, &new.api);
    [
        ("api.socket", a.socket != b.socket),
        ("api.allowed_groups", a.allowed_groups != b.allowed_groups),
        ("api.admin_groups", a.admin_groups != b.admin_groups),
        (
            "api.max_connections",
            a.max_connections != b.max_connections,
        ),
        (
            "journal.capacity",
            running.journal.capacity != new.journal.capacity,
        ),
        (
            "metrics.listen",
            running.metrics.listen != new.metrics.listen,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// An error chain on one line (STATUS is one line).
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
