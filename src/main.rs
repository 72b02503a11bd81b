//! posbridge: parse the command line, dispatch, map errors to exit codes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use posbridge::cli::{Cli, Command, ConfigCommand, GenerateCommand, JournalCommand, ReverseArgs};
use posbridge::client::{self, exit};
use posbridge::exchange::Body;
use posbridge::{config::Config, daemon, systemd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            // The whole chain: what failed, and why, down to the OS error.
            eprintln!("posbridge: error: {e:#}");
            ExitCode::from(exit::LOCAL as u8)
        }
    }
}

/// The daemon's few threads share one malloc arena: glibc's default of one arena per thread
/// (up to 8 per core) keeps memory each thread once freed (issue 20: RSS at rest).
fn lean_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: a malloc tuning call, made before the daemon starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Daemon(a) => {
            lean_allocator();
            systemd::init_logging();
            daemon::run(daemon::Options {
                config: a.config,
                socket: a.socket,
                state_dir: a.state_dir,
            })
            .inspect_err(|e| log::error!("{e:#}"))?;
            Ok(exit::OK)
        }
        Command::Pay(a) => {
            let mut req = client::operation("pay", &a.op);
            req.insert("amount".into(), json!(a.amount));
            if let Some(c) = a.currency {
                req.insert("currency".into(), json!(c));
            }
            // A person sees the progress; `--json` prints event lines only when asked, so a
            // script reading one JSON line still gets one.
            if !a.op.client.json || a.progress {
                req.insert("progress".into(), json!(true));
            }
            let mut shown = client::Shown::new(&a.op.client);
            let answer =
                client::request_telling(&a.op.client, &Value::Object(req), |e| shown.event(e));
            shown.done();
            Ok(client::report(&a.op.client, &answer?))
        }
        Command::Refund(a) => reverse("refund", a),
        Command::Cancel(a) => reverse("cancel", a),
        Command::GetResult(a) => send(
            &a.client,
            json!({"action": "get_result", "request_id": a.request_id}),
        ),
        Command::Resolve(a) => send(
            &a.client,
            json!({"action": "resolve", "request_id": a.request_id,
                   "decision": if a.charged { "charged" } else { "not_charged" },
                   "note": a.note}),
        ),
        Command::CloseShift(a) => send(
            &a.client,
            Value::Object(client::operation("close_shift", &a)),
        ),
        Command::Results(a) => send(&a.client, json!({"action": "results", "limit": a.limit})),
        Command::Status(a) => send(&a, json!({"action": "status"})),
        Command::Replica(a) => {
            systemd::init_logging();
            posbridge::replica::run(posbridge::replica::Options {
                backend: a.backend,
                listen: a.listen,
                state: a.state,
                secret: a.secret.map(posbridge::secret::Secret::new),
                options: a.options.into_iter().collect(),
            })?;
            Ok(exit::OK)
        }
        Command::Doctor(a) => {
            let checks = posbridge::doctor::run(&a);
            if a.json {
                println!("{}", posbridge::doctor::to_json(&checks));
            } else {
                print!("{}", posbridge::doctor::to_text(&checks));
            }
            Ok(posbridge::doctor::exit_code(&checks))
        }
        Command::Generate(GenerateCommand::Man { dir }) => {
            for page in posbridge::generate::man(&dir)? {
                println!("{}", page.display());
            }
            Ok(exit::OK)
        }
        Command::Generate(GenerateCommand::Completions { shell }) => {
            posbridge::generate::completions(shell, &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Pair(a) => client::pairing::pair(&a),
        Command::Unpair(a) => client::pairing::unpair(&a),
        Command::Devices(a) => send(&a, json!({"action": "devices"})),
        Command::Scan(a) => {
            let mut req = json!({"action": "scan", "seconds": a.seconds});
            // A person at a terminal sees the readers as they are heard; `--json` prints the
            // found event lines only when asked, as pay does with its progress.
            let mut heard = client::Heard::new(&a.client, a.seconds, a.progress);
            if heard.wanted() {
                req["progress"] = json!(true);
            }
            let answer = client::request_telling(&a.client, &req, |e| heard.event(e));
            heard.done();
            Ok(client::report(&a.client, &answer?))
        }
        Command::Emulate(a) => {
            systemd::init_logging();
            posbridge::emulate::run(posbridge::emulate::Options {
                kind: a.kind,
                pty: a.pty,
                state: a.state,
                noise: a.noise,
                seed: a.noise_seed,
                serial: a.serial,
                protocol_version: a.protocol_version,
                keep_results: a.keep_results,
                accounts: a.accounts,
            })?;
            Ok(exit::OK)
        }
        Command::Journal(JournalCommand::Check(a)) => {
            posbridge::journal::salvage::check_command(&posbridge::paths::state_dir(a.state_dir))
        }
        Command::Journal(JournalCommand::Salvage(a)) => {
            posbridge::journal::salvage::salvage_command(&posbridge::paths::state_dir(a.state_dir))
        }
        Command::Config(ConfigCommand::Check { file, secrets }) => config_check(&file, secrets),
    }
}

/// `posbridge config check FILE [--secrets]`: the file's rules, what a reload applies, and
/// (with `--secrets`) every secret read as a reload reads it. Exit 4 on the first failure.
fn config_check(file: &std::path::Path, secrets: bool) -> Result<i32> {
    let config = Config::load(file)?;
    let metrics = match &config.metrics.listen {
        Some(at) => format!("metrics on {at}"),
        None => "metrics off".into(),
    };
    println!(
        "{}: ok (default provider {}, journal capacity {}, {metrics})",
        file.display(),
        config.default_provider,
        config.journal.capacity
    );
    println!(
        "on `systemctl reload posbridge`: the providers, their secrets, default_provider and \
         [daemon] take effect; [api], journal.capacity and [metrics] wait for a restart"
    );
    let mut unreadable = 0;
    for key in config.providers.secrets() {
        let name = format!("{}.{}", key.section, key.name);
        if !secrets {
            println!("{name}: not read (--secrets reads it as a reload does)");
            continue;
        }
        match posbridge::secret::resolve(key.section, key.name, key.inline, key.file) {
            Ok(_) => println!("{name}: readable"),
            Err(posbridge::secret::SecretError::Missing { .. }) => println!(
                "{name}: from the systemd credential `{}` (only the service sees it)",
                key.name
            ),
            Err(e) => {
                eprintln!("posbridge: error: {e}; a reload would be refused");
                unreadable += 1;
            }
        }
    }
    Ok(if unreadable > 0 {
        exit::LOCAL
    } else {
        exit::OK
    })
}

fn send(args: &posbridge::cli::ClientArgs, req: Value) -> Result<i32> {
    let resp = client::request(args, &req)?;
    Ok(client::report(args, &resp))
}

fn reverse(action: &str, a: ReverseArgs) -> Result<i32> {
    let primary: Value = match (&a.primary, &a.primary_json) {
        (_, Some(raw)) => serde_json::from_str(raw).context("--primary-json is not valid JSON")?,
        (Some(id), None) => {
            let original = client::request(
                &a.op.client,
                &json!({"action": "get_result", "request_id": id}),
            )?;
            match original.body {
                Body::Done(data) => data.to_value(),
                Body::Refused(r) => anyhow::bail!(
                    "cannot {action}: the pay {id} has no successful result ({})",
                    r.message
                ),
            }
        }
        (None, None) => unreachable!("clap requires --primary or --primary-json"),
    };
    let mut req = client::operation(action, &a.op);
    req.insert("amount".into(), json!(a.amount));
    req.insert("primary_transaction".into(), primary);
    if let Some(c) = a.currency {
        req.insert("currency".into(), json!(c));
    }
    send(&a.op.client, Value::Object(req))
}
