//! Command-line definitions (clap). Client commands talk to the daemon over its socket.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "posbridge",
    version,
    about = "Payment daemon for the shop counter: POS sales over a local socket, a durable result journal, backends and card readers."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (in the foreground; systemd supervises it).
    Daemon(DaemonArgs),
    /// Take a payment.
    Pay(PayArgs),
    /// Refund (part of) an earlier pay.
    Refund(ReverseArgs),
    /// Cancel (void) an earlier pay in full.
    Cancel(ReverseArgs),
    /// Ask what happened to a request.
    GetResult(GetResultArgs),
    /// Settle an outcome no machine can find out, on an operator's word (admin).
    ///
    /// Only for an operation whose outcome is unknown: check with the backend's portal or the
    /// reader's receipt first. The decision, who made it and when, and the note are kept in the
    /// journal, and get_result answers with it from then on.
    Resolve(ResolveArgs),
    /// Close the shift and print its totals.
    CloseShift(OperationArgs),
    /// List the newest results in the journal.
    Results(ResultsArgs),
    /// Show the daemon's state.
    Status(ClientArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check or salvage the result journal (offline: stop the daemon first).
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Check what this counter needs, and say how to fix what is wrong.
    ///
    /// Checks the socket and its permissions, the state directory and free space, the
    /// journal's integrity, paired devices and their /dev/posbridge names, other daemons
    /// holding serial ports, the BLE adapter, and each configured backend's DNS, TLS and clock.
    /// Each check is ok, warn, fail or skip. Exit code 0 when nothing failed (warnings and
    /// skips allowed), 1 when a check failed.
    Doctor(DoctorArgs),
    /// Run a loopback replica of a payment backend (tests and demos only).
    Replica(ReplicaArgs),
    /// Pair a card reader or DQR display (bonds a BLE one first, comparing a code; connects,
    /// checks its HELLO, remembers it).
    Pair(PairArgs),
    /// Forget a paired device (and remove a BLE device's bond, asking first).
    Unpair(UnpairArgs),
    /// List paired devices and whether they are connected.
    Devices(ClientArgs),
    /// List Bluetooth LE readers advertising the link service, with signal strength and
    /// whether each is bonded (BlueZ) and paired (posbridge); on a terminal the list updates as
    /// they are heard, then the table comes, strongest signal first.
    Scan(ScanArgs),
    /// Emulate a card reader or DQR display on a pty (tests, demos, hil/).
    Emulate(EmulateArgs),
    /// Write the man page or shell completions (for packaging).
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The daemon's config, socket and state directory, found as the daemon finds them.
    #[command(flatten)]
    pub paths: DaemonArgs,
    /// Print the checks as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Seconds each network check (DNS, TLS, HTTP) may take.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write posbridge.1 and a page per subcommand (posbridge-pay.1, ...) into DIR.
    Man { dir: PathBuf },
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct PairArgs {
    /// serial:PATH (e.g. serial:/dev/posbridge/reader) or ble:ADDRESS (AA:BB:CC:DD:EE:FF).
    pub address: String,
    /// What the device is: card-reader or dqr-display (it must say the same in its HELLO).
    #[arg(long, value_parser = ["card-reader", "dqr-display"])]
    pub role: String,
    /// Serial only: baud rate (default 115200).
    #[arg(long)]
    pub baud: Option<u32>,
    /// BLE only: accept a bond that is not authenticated (Just Works: the reader shows no
    /// code, or a bond made outside posbridge) and let the acquirer's credentials go over it.
    /// `devices`, `doctor` and the log flag it for as long as that bond lives.
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// BLE only: remove a bond BlueZ already holds with the device and bond again (with a code
    /// to compare).
    #[arg(long)]
    pub rebond: bool,
    /// BLE only: how long to look for a device BlueZ has not seen yet, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub wait: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// How long to listen, 1 to 60 seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub seconds: u64,
    /// With --json: print a found event line per device as it is heard (again when its signal
    /// or bond changes), before the answer. Without --json a terminal shows the devices as
    /// they are heard, on stderr; elsewhere only the final table is printed.
    #[arg(long)]
    pub progress: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct UnpairArgs {
    /// The device id, as `posbridge devices` lists it.
    pub id: String,
    /// BLE: keep BlueZ's bond with the device (by default it is removed too).
    #[arg(long)]
    pub keep_bond: bool,
    /// BLE: remove the bond without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// card-reader or dqr-display.
    #[arg(value_enum)]
    pub kind: crate::emulate::Kind,
    /// Where to link the pty's path (a stale link there is replaced); pair it as serial:LINK.
    #[arg(long, value_name = "LINK")]
    pub pty: PathBuf,
    /// JSON file keeping the serial number and the reader's last 500 results across restarts.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Percent of frames to corrupt (and garbage to inject between frames), 0 to 100.
    #[arg(long, default_value_t = 0, value_name = "PERCENT")]
    pub noise: u32,
    /// Seed for --noise, to repeat a run exactly.
    #[arg(long, env = "POSBRIDGE_NOISE_SEED")]
    pub noise_seed: Option<u64>,
    /// Serial number to announce in HELLO (default: stored in --state, else derived from LINK).
    #[arg(long)]
    pub serial: Option<String>,
    /// Link protocol version to speak, 1 to 4 (1: a reader from before the LIFE POS details,
    /// DUPLICATE and SHIFT_TOTALS; 2: before the result window; 3: before STAGE and ABORT).
    #[arg(long, default_value_t = crate::device::session::PROTOCOL_VERSION,
          value_parser = clap::value_parser!(u8).range(1..=4))]
    pub protocol_version: u8,
    /// Results the card reader keeps (the oldest are evicted beyond it, also from the state
    /// file when it starts); fewer than 500 lets a test see a result evicted.
    #[arg(long, default_value_t = crate::emulate::KEEP_RESULTS, value_name = "N")]
    pub keep_results: usize,
    /// A Lifepay account the card reader accepts, LOGIN:PASSWORD_FILE (the password read from
    /// the file as the daemon reads `password_file`); repeat for more. A start whose login and
    /// password match none is refused (SALE_RESULT error, nothing charged). Without any, the
    /// reader accepts every login and password, and says so when it starts.
    #[arg(long = "account", value_name = "LOGIN:PASSWORD_FILE")]
    pub accounts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReplicaArgs {
    /// phonepe, iotpay or paysera.
    pub backend: String,
    /// Loopback address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// JSON file keeping the replica's state across restarts.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The secret it verifies signatures with (salt key, merchant key, MAC key).
    #[arg(long, env = "POSBRIDGE_REPLICA_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Backend-specific behaviour, KEY=VALUE (repeatable; see each replica's docs).
    #[arg(long = "option", value_name = "KEY=VALUE", value_parser = key_value)]
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Configuration file (default: the embedded defaults, or /etc/posbridge/posbridge.toml).
    #[arg(long, env = "POSBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The daemon's socket (where it listens).
    #[arg(long, env = "POSBRIDGE_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The daemon's state directory (journal, paired devices, sim ledger).
    #[arg(long, env = "POSBRIDGE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The daemon's socket.
    #[arg(long, env = "POSBRIDGE_SOCKET", global = true)]
    pub socket: Option<PathBuf>,
    /// Print the response object as one JSON line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 600, global = true)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct OperationArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Idempotency key; a UUID is generated when omitted.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Provider to use (default: the daemon's default_provider).
    #[arg(long)]
    pub provider: Option<String>,
    /// Metadata to store and echo, KEY=VALUE (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = key_value)]
    pub meta: Vec<(String, String)>,
    /// Provider parameter, KEY=VALUE; VALUE is parsed as JSON when it can be (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = key_value)]
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct PayArgs {
    /// Amount in minor units (100 = 1.00).
    #[arg(long)]
    pub amount: u64,
    /// ISO 4217 currency (default: the provider's).
    #[arg(long)]
    pub currency: Option<String>,
    /// With --json: print the sale's progress event lines before the answer (without --json
    /// progress is always shown, on stderr: one updating line on a terminal).
    #[arg(long)]
    pub progress: bool,
    #[command(flatten)]
    pub op: OperationArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("original").required(true).args(["primary", "primary_json"]))]
pub struct ReverseArgs {
    /// Amount in minor units.
    #[arg(long)]
    pub amount: u64,
    /// request_id of the original pay (its data is fetched with get_result).
    #[arg(long)]
    pub primary: Option<String>,
    /// The original pay's data as JSON.
    #[arg(long)]
    pub primary_json: Option<String>,
    #[arg(long)]
    pub currency: Option<String>,
    #[command(flatten)]
    pub op: OperationArgs,
}

#[derive(Debug, Args)]
pub struct GetResultArgs {
    pub request_id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("decision").required(true)))]
pub struct ResolveArgs {
    pub request_id: String,
    /// The money moved: the customer was charged (the refund or cancel went through).
    #[arg(long, group = "decision")]
    pub charged: bool,
    /// Nothing moved.
    #[arg(long, group = "decision")]
    pub not_charged: bool,
    /// Why: what was checked, and where (kept in the journal with the decision).
    #[arg(long)]
    pub note: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// How many results, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check the journal's integrity and shape (read-only). Exit 1 when it is damaged.
    Check(JournalArgs),
    /// Move a damaged journal aside (timestamped) and copy every readable row into a fresh
    /// one, unknown outcomes first; prints what was kept and lost. The daemon must be stopped.
    Salvage(JournalArgs),
}

#[derive(Debug, Args)]
pub struct JournalArgs {
    /// The daemon's state directory (journal.sqlite lives there).
    #[arg(long, env = "POSBRIDGE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (unknown keys are errors): the dry run of
    /// `systemctl reload posbridge`.
    Check {
        file: PathBuf,
        /// Also read every secret the file names, as a reload does, and fail if one cannot
        /// be read (run it as the daemon's user). A secret left to a systemd credential is
        /// only named: the service alone sees those.
        #[arg(long)]
        secrets: bool,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}
