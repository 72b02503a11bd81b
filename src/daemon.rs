//! `posbridge daemon`: start-up order, task wiring, the main loop and shutdown.
//!
//! Order matters: configuration, state-dir lock (the journal's), journal open, integrity check
//! and schema version (older migrated, newer refused untouched), recovery
//! (every interrupted operation becomes "outcome unknown" and is queued for reconciliation),
//! then the socket, and only then READY. On SIGHUP: RELOADING, the configuration and its
//! secrets read again and put in force for new operations, or refused (`reload.rs`), then
//! READY again; the socket stays open throughout. On SIGTERM: STOPPING, stop accepting, let running
//! operations finish (bounded by `daemon.shutdown_timeout_ms`), exit 0. Whatever is still
//! running then stays in the journal as in flight and is reconciled at the next start.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::server::Server;
use crate::config::Config;
use crate::device::manager::DeviceManager;
use crate::device::screen::{DisplayScreen, Screen};
use crate::engine::{reconcile, Engine};
use crate::exporter::{self, endpoint};
use crate::journal::{self, Batching, Journal};
use crate::metrics::Watchdog;
use crate::{paths, systemd};

mod reload;

pub struct Options {
    pub config: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

pub fn run(opts: Options) -> Result<()> {
    // Before any thread exists: taking the activation fds edits the environment.
    let activated = systemd::activated_listener().context("socket activation")?;
    let config = match paths::config_file(opts.config.clone()) {
        Some(path) => Config::load(&path)?,
        None => Config::default(),
    };
    // The journal holds sale metadata: new state files are for the daemon's user and group only.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe { libc::umask(0o027) };
    let state_dir = paths::state_dir(opts.state_dir);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create the state directory {}", state_dir.display()))?;
    let _lock = journal::place::lock(&state_dir)?;
    if let Some(file) = crate::clock::seam_in_use() {
        log::warn!(
            "{} is set ({}): the wall clock is offset for a test; never set it on a counter",
            crate::clock::OFFSET_FILE_ENV,
            file.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let socket = match (opts.socket, activated) {
        (Some(path), _) => Listen::Path(path),
        (None, Some(listener)) => Listen::Activated(listener),
        (None, None) => Listen::Path(paths::socket(None, config.api.socket.clone())),
    };
    runtime
        .block_on(serve(config, opts.config, state_dir.clone(), socket))
        .map_err(|e| crate::journal::health::if_disk_full(e, &state_dir))
}

enum Listen {
    Path(PathBuf),
    Activated(std::os::unix::net::UnixListener),
}

fn bind(listen: Listen) -> Result<(UnixListener, Option<PathBuf>)> {
    let path = match listen {
        Listen::Activated(l) => return Ok((UnixListener::from_std(l)?, None)),
        Listen::Path(p) => p,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the socket directory {}", parent.display()))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            bail!(
                "{} exists and is not a socket; refusing to replace it (remove it, or choose \
                 another path with --socket)",
                path.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            bail!("another daemon is already serving {}", path.display());
        }
        // A stale socket from a daemon that died: nobody listens on it.
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    Ok((listener, Some(path)))
}

fn status_line(engine: &Engine, phase: &str, note: Option<&str>) -> String {
    let counts = engine.journal().counts().unwrap_or_default();
    let mut line = format!(
        "{phase}: {} running, {} unknown, {}/{} in journal",
        engine.running(),
        counts.unknown,
        counts.total,
        engine.journal().capacity()
    );
    if let Some(note) = note {
        line = format!("{line}; {note}");
    }
    match engine.journal().health().summary() {
        Some(fault) => format!("{line}; {fault}"),
        None => line,
    }
}

/// Starts the metrics endpoint if `[metrics] listen` is set. A listen address that cannot be
/// bound (port taken) is logged and the daemon serves sales without metrics: figures are never
/// worth a counter that cannot take payments.
async fn start_metrics(
    config: &Config,
    sources: exporter::Sources,
    shutdown: CancellationToken,
) -> Result<()> {
    let listen = match config.metrics.listen() {
        Ok(Some(listen)) => listen,
        Ok(None) => return Ok(()),
        Err(why) => bail!("metrics.listen: {why}"),
    };
    match endpoint::Listener::bind(&listen).await {
        Ok((listener, at)) => {
            log::info!("metrics on {at}");
            tokio::spawn(endpoint::serve(listener, Arc::new(sources), shutdown));
        }
        Err(e) => log::error!("metrics are off: {e:#}; sales are served as usual"),
    }
    Ok(())
}

async fn serve(
    config: Config,
    config_flag: Option<PathBuf>,
    state_dir: PathBuf,
    listen: Listen,
) -> Result<()> {
    // Before the socket exists: a stop that comes as soon as clients can connect must be a
    // clean one, not SIGTERM's default action; a reload must never be SIGHUP's (exit).
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let journal_path = journal::place::path(&state_dir);
    let journal = Arc::new(Journal::open(
        &journal_path,
        config.journal.capacity,
        Batching::default(),
    )?);
    let shutdown = CancellationToken::new();
    // Paired devices connect in the background: the daemon serves whether or not they are there.
    let devices = DeviceManager::start(&state_dir, shutdown.child_token())
        .context("cannot load the paired devices")?;
    // The customer's screen: the paired DQR display, if any (best-effort, never blocks a sale).
    let screen: Arc<dyn Screen> = Arc::new(DisplayScreen::start(
        devices.clone(),
        shutdown.child_token(),
    ));
    let providers = crate::provider::from_config(&config, &state_dir, &devices, &screen)?;
    let mut reloader = reload::Reloader {
        flag: config_flag,
        state_dir: state_dir.clone(),
        devices: devices.clone(),
        screen: screen.clone(),
        config: config.clone(),
        note: None,
    };
    let tasks = TaskTracker::new();
    let (engine, queue) = Engine::with_screen(
        journal.clone(),
        providers,
        config.default_provider.clone(),
        tasks.clone(),
        screen,
    );
    engine.set_manual_check_after(Duration::from_millis(config.daemon.manual_check_after_ms));
    let (interrupted, unknown) = engine.recover().await.context("journal recovery failed")?;
    tokio::spawn(reconcile::run(
        engine.clone(),
        queue,
        shutdown.child_token(),
    ));

    let (listener, bound) = bind(listen)?;
    let server = Server {
        engine: engine.clone(),
        devices: devices.clone(),
        max_connections: config.api.max_connections,
        access: crate::api::access::Access::new(
            &config.api.allowed_groups,
            &config.api.admin_groups,
        ),
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
    };
    tokio::spawn(server.run(listener));
    let watchdog = systemd::watchdog_interval();
    let liveness = Arc::new(Watchdog::new(watchdog.is_some()));
    let sources = exporter::Sources {
        engine: engine.clone(),
        devices: devices.clone(),
        watchdog: liveness.clone(),
        started: crate::clock::unix_secs(),
    };
    start_metrics(&config, sources, shutdown.child_token()).await?;
    // READY_MONOTONIC_USEC: when this line was made, on systemd's clock; READY follows it, so
    // the unit's ActiveEnterTimestampMonotonic is never earlier (hil/vm part 2 checks this).
    log::info!(ready_monotonic_usec = systemd::monotonic_usec();
        "ready on {} (state {}, {interrupted} interrupted operations recovered, {unknown} to reconcile)",
        bound.as_deref().map_or("the socket passed by systemd".into(), |p| p.display().to_string()),
        state_dir.display()
    );
    systemd::ready(&status_line(&engine, "ready", None));

    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(10)));
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                systemd::reloading("reloading the configuration");
                let summary = reloader.reload(&engine);
                systemd::ready(&status_line(&engine, "ready", Some(&summary)));
            }
            _ = tick.tick() => {
                // Only a journal that still commits counts as alive.
                match tokio::time::timeout(Duration::from_secs(5), journal.ping()).await {
                    Ok(Ok(())) => {
                        if watchdog.is_some() {
                            systemd::watchdog();
                        }
                        liveness.ok();
                    }
                    Ok(Err(e)) => {
                        liveness.failed();
                        log::error!("journal is not committing: {e}");
                    }
                    Err(_) => {
                        liveness.failed();
                        log::error!("journal did not answer within 5 s");
                    }
                }
                systemd::status(&status_line(&engine, "ready", reloader.note.as_deref()));
            }
        }
    }

    let running = engine.running();
    log::info!("stopping: {running} operations running");
    systemd::stopping(&format!("stopping: finishing {running} running operations"));
    shutdown.cancel();
    tasks.close();
    let limit = Duration::from_millis(reloader.config.daemon.shutdown_timeout_ms);
    if tokio::time::timeout(limit, tasks.wait()).await.is_err() {
        log::warn!(
            "{} operations still running after {limit:?}; they will be reconciled at the next start",
            engine.running()
        );
    }
    if let Some(path) = bound {
        let _ = std::fs::remove_file(path);
    }
    journal.close();
    log::info!("stopped");
    Ok(())
}
