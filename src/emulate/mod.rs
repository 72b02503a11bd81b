//! `posbridge emulate`: the firmware side of the link protocol on a pty, for tests, demos and
//! hil/ (docs/devices.md). It makes a pty pair, keeps the device end, links the other end's
//! path at `--pty LINK` and serves hosts one after another until killed. It owns the pty, the
//! link loop and the state file; what each device does is in `card_reader` and `dqr_display`.
//! It must never be reachable from the daemon: it only speaks the protocol from the far side.

mod accounts;
mod card_reader;
mod dqr_display;
mod pty;
mod state;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio_serial::{SerialPort, SerialStream};

use crate::device::link::{Hello, Message, Role};
use crate::device::session::{self, DeviceLink, Noise, Sender, PROTOCOL_VERSION};
use crate::device::transport::{ByteStream, Connection};

pub use state::KEEP_RESULTS;

pub const MODEL: &str = "posbridge-emu";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    CardReader,
    DqrDisplay,
}

pub struct Options {
    pub kind: Kind,
    pub pty: PathBuf,
    pub state: Option<PathBuf>,
    pub noise: u32,
    pub seed: Option<u64>,
    pub serial: Option<String>,
    /// The link protocol version announced in HELLO (a version 1 reader answers as one).
    pub protocol_version: u8,
    /// How many results a card reader keeps (`--keep-results`; 500 like the Lifepay QPOS).
    pub keep_results: usize,
    /// `--account LOGIN:PASSWORD_FILE`: the Lifepay accounts a card reader accepts (none: any).
    pub accounts: Vec<String>,
}

/// What one emulated device does with the host's messages.
trait Firmware: Send + Sync + 'static {
    /// Handles one delivered message; answers go out through `link` (from a task, if late).
    fn handle(self: Arc<Self>, msg: Message, link: Sender);
}

pub fn run(opts: Options) -> Result<()> {
    if opts.noise > 100 {
        bail!("--noise: {} is not a percentage (0 to 100)", opts.noise);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(opts))
}

async fn serve(opts: Options) -> Result<()> {
    let role = match opts.kind {
        Kind::CardReader => Role::CardReader,
        Kind::DqrDisplay => Role::DqrDisplay,
    };
    let store = opts.state.as_deref().map(state::Store::new);
    let serial = match (&opts.serial, &store) {
        (Some(s), _) => s.clone(),
        (None, Some(store)) => store.serial()?,
        (None, None) => state::serial_for_link(&opts.pty),
    };
    let hello = Hello {
        protocol_version: opts.protocol_version.min(PROTOCOL_VERSION),
        role,
        model: MODEL.into(),
        firmware: env!("CARGO_PKG_VERSION").into(),
        serial: serial.clone(),
    };
    let accounts = accounts::Accounts::parse(&opts.accounts)?;
    if opts.kind == Kind::DqrDisplay && !accounts.is_open() {
        bail!("--account: a DQR display signs nothing in; only a card-reader takes accounts");
    }
    let accepts_any = opts.kind == Kind::CardReader && accounts.is_open();
    let sign_in = match opts.kind {
        Kind::DqrDisplay => String::new(),
        Kind::CardReader if accounts.is_open() => {
            "; accepts ANY login and password (no --account given: a demo reader, it proves \
             nothing about credentials)"
                .into()
        }
        Kind::CardReader => format!(
            "; accepts only the Lifepay logins {} with their --account passwords",
            accounts.logins().join(", ")
        ),
    };
    let firmware: Arc<dyn Firmware> = match opts.kind {
        Kind::CardReader => Arc::new(card_reader::CardReader::open(
            store,
            accounts,
            opts.protocol_version.min(PROTOCOL_VERSION),
            opts.keep_results,
        )?),
        Kind::DqrDisplay => Arc::new(dqr_display::DqrDisplay),
    };
    let (device_end, host_end) = SerialStream::pair().context("cannot create a pty pair")?;
    // Each host gets its own registration of the master with tokio (pty.rs says why).
    let master = pty::PtyMaster::dup_of(device_end.as_raw_fd()).context("cannot keep the pty")?;
    drop(device_end);
    let host_path = host_end
        .name()
        .context("the pty has no path (cannot link it)")?;
    // The host opens the path itself; holding our own copy open would keep stale bytes for
    // the next host and hide its hang-ups from us.
    drop(host_end);
    link_at(Path::new(&host_path), &opts.pty)?;
    // One line, loud (warn) when the reader accepts any credentials.
    let level = if accepts_any {
        log::Level::Warn
    } else {
        log::Level::Info
    };
    log::log!(
        level,
        "{} {} (serial {serial}) on {host_path}, linked at {}{sign_in}",
        MODEL,
        session::role_name(role),
        opts.pty.display()
    );
    let seed = opts.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    if opts.noise > 0 {
        log::info!("noise {}% with seed {seed}", opts.noise);
    }
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = link_loop(master, firmware, hello, opts.noise, seed) => {}
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }
    let _ = std::fs::remove_file(&opts.pty);
    Ok(())
}

/// Serves one host after another on the device end. While no host has the pty open, reads
/// fail (EIO): that is a host that went away, and the next HELLO starts afresh.
async fn link_loop(
    master: pty::PtyMaster,
    firmware: Arc<dyn Firmware>,
    hello: Hello,
    noise: u32,
    seed: u64,
) {
    for generation in 0u64.. {
        let stream: Box<dyn ByteStream> = match master.link() {
            Ok(s) => Box::new(s),
            Err(e) => {
                log::warn!("cannot register the pty: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let conn = Connection {
            stream,
            mtu: usize::MAX,
            ack_timeout: crate::device::serial::ACK_TIMEOUT,
            private: true,
            ble: None,
        };
        let noise = (noise > 0).then(|| Noise::new(noise, seed.wrapping_add(generation)));
        let started = tokio::time::Instant::now();
        let mut link = DeviceLink::serve(conn, hello.clone(), noise);
        while let Some(msg) = link.inbound.recv().await {
            firmware.clone().handle(msg, link.sender.clone());
        }
        let why = match link.task.await {
            Ok((_, why)) => why,
            Err(e) => panic!("the link task failed: {e}"),
        };
        // With no host on the pty every read fails at once: only a link that lived is news.
        if started.elapsed() > Duration::from_millis(200) {
            log::info!("host link ended: {why}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Points `link` at `target`, replacing a stale symlink but never a real file.
fn link_at(target: &Path, link: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if !meta.file_type().is_symlink() {
            bail!(
                "{} exists and is not a symlink; refusing to replace it",
                link.display()
            );
        }
    }
    let tmp = link.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create a symlink at {}", tmp.display()))?;
    std::fs::rename(&tmp, link)
        .with_context(|| format!("cannot link the pty at {}", link.display()))?;
    Ok(())
}

/// Sends `msg` from a task: the link loop must keep reading while the host ACKs.
fn reply(link: &Sender, msg: Message) {
    let link = link.clone();
    tokio::spawn(async move {
        if let Err(e) = link.send(msg).await {
            log::debug!("answer not delivered: {e}");
        }
    });
}
