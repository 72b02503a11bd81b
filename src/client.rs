//! The client side of the socket API, for the CLI: send one request, read one response, and
//! print it for a person (or as one JSON line with `--json`). A pay that asked for progress
//! has its event lines shown as they come ([`Shown`]): on a terminal as one line that updates,
//! else as plain lines, on stderr; with `--json`, as the event lines themselves on stdout. A
//! scan's found events are shown by [`Heard`] (`scan`).

mod scan;

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Map, Value};

use crate::cli::{ClientArgs, OperationArgs};

pub mod pairing;
use crate::exchange::{Answer, Body, ErrorKind};
pub use scan::Heard;

/// Exit codes (README: "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    /// The daemon answered with an error (declined, invalid request, duplicate, not found...).
    pub const FAILED: i32 = 1;
    /// The outcome is unknown: ask again with get-result.
    pub const UNKNOWN: i32 = 3;
    /// The daemon could not be reached or the command could not run.
    pub const LOCAL: i32 = 4;
}

pub fn request(args: &ClientArgs, req: &Value) -> Result<Answer> {
    request_telling(args, req, |_| {})
}

/// [`request`], handing each progress event line that comes before the answer to `event`
/// (only a request with `"progress": true` gets any).
pub fn request_telling(
    args: &ClientArgs,
    req: &Value,
    event: impl FnMut(&Value),
) -> Result<Answer> {
    let path = crate::paths::client_socket(args.socket.clone(), None);
    let raw = round_trip(&path, req, Duration::from_secs(args.timeout), event)?;
    serde_json::from_str(&raw)
        .with_context(|| format!("the daemon sent an unreadable answer: {raw}"))
}

/// How progress events are shown while a pay runs.
pub struct Shown {
    json: bool,
    terminal: bool,
    /// Whether the updating line holds text to clear.
    dirty: bool,
}

impl Shown {
    pub fn new(args: &ClientArgs) -> Shown {
        Shown {
            json: args.json,
            terminal: std::io::stderr().is_terminal(),
            dirty: false,
        }
    }

    /// Shows one event line as it came.
    pub fn event(&mut self, event: &Value) {
        let stage = event["stage"].as_str().unwrap_or("?");
        let message = event["message"].as_str().unwrap_or("");
        if self.json {
            println!("{event}");
            let _ = std::io::stdout().flush();
        } else if self.terminal {
            eprint!("\r\x1b[K{stage}: {message}");
            let _ = std::io::stderr().flush();
            self.dirty = true;
        } else {
            eprintln!("progress: {stage}: {message}");
        }
    }

    /// Clears the updating line before the answer is printed.
    pub fn done(&mut self) {
        if std::mem::take(&mut self.dirty) {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}

fn round_trip(
    path: &Path,
    req: &Value,
    timeout: Duration,
    mut event: impl FnMut(&Value),
) -> Result<String> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(anyhow::Error::new(e).context(format!(
                "no permission to use the posbridge daemon's socket {}: this user is not in \
                 the group that owns it (the service's is `posbridge`: `usermod -aG posbridge \
                 USER`, then log in again)",
                path.display()
            )))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot connect to the posbridge daemon at {} (is it running? \
                 start it with `posbridge daemon`, or pass --socket)",
                path.display()
            )))
        }
    };
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    // A daemon that refuses the connection (unauthorized, busy) answers at once and closes,
    // possibly before we have written: its answer is still waiting to be read.
    let sent = stream.write_all(&line);
    let mut lines = BufReader::new(stream);
    let mut answer = String::new();
    let mut read = lines.read_line(&mut answer);
    // Event lines (an object with `event` and no `code`) come before the answer.
    while let Ok(Value::Object(line)) = serde_json::from_str::<Value>(&answer) {
        if !line.contains_key("event") || line.contains_key("code") {
            break;
        }
        event(&Value::Object(line));
        answer.clear();
        read = lines.read_line(&mut answer);
    }
    if answer.is_empty() {
        sent.context("cannot send the request")?;
        read.context("no answer from the daemon")?;
        return Err(anyhow!(
            "the daemon closed the connection without answering"
        ));
    }
    Ok(answer.trim_end().to_owned())
}

/// Request fields shared by every operation command.
pub fn operation(action: &str, op: &OperationArgs) -> Map<String, Value> {
    let mut req = Map::new();
    req.insert("action".into(), json!(action));
    if let Some(id) = &op.request_id {
        req.insert("request_id".into(), json!(id));
    }
    if let Some(p) = &op.provider {
        req.insert("provider".into(), json!(p));
    }
    if !op.meta.is_empty() {
        let meta: Map<String, Value> = op.meta.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        req.insert("metadata".into(), Value::Object(meta));
    }
    if !op.params.is_empty() {
        let params: Map<String, Value> = op
            .params
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::from_str(v).unwrap_or_else(|_| json!(v)),
                )
            })
            .collect();
        req.insert("params".into(), Value::Object(params));
    }
    req
}

/// Prints `answer` and returns the exit code it means.
pub fn report(args: &ClientArgs, answer: &Answer) -> i32 {
    if args.json {
        println!(
            "{}",
            serde_json::to_string(answer).expect("an answer always serializes")
        );
    } else {
        print_human(answer);
    }
    match answer.kind() {
        None => exit::OK,
        Some(ErrorKind::UnknownResultError) => exit::UNKNOWN,
        Some(_) => exit::FAILED,
    }
}

fn print_human(answer: &Answer) {
    let id = answer.request_id.as_deref().unwrap_or("-");
    let r = match &answer.body {
        Body::Done(data) => {
            print_data(id, &data.to_value());
            return;
        }
        Body::Refused(r) => r,
    };
    let (reason, message) = (r.reason.as_str(), r.message.as_str());
    match r.kind {
        ErrorKind::UnknownResultError => {
            println!("outcome unknown ({reason}): {message}");
            println!("  ask again: posbridge get-result {id}");
        }
        _ => println!("{reason}: {message}"),
    }
    println!("  request_id         {id}");
}

fn device_row(cells: [&str; 8]) {
    let [id, role, address, state, bond, model, firmware, error] = cells;
    println!(
        "{id:<28} {role:<12} {address:<40} {state:<13} {bond:<20} {model:<16} {firmware:<10} {error}"
    );
}

/// A BLE device's bond in a few words (`-` for other transports).
fn bond_cell(d: &Value) -> String {
    if d["transport"] != "ble" {
        return "-".into();
    }
    let b = &d["bond"];
    let rssi = d["rssi"]
        .as_i64()
        .map(|r| format!(" {r}dBm"))
        .unwrap_or_default();
    let what = if d["bonded"] == false {
        "none in BlueZ"
    } else if b.is_null() {
        "unknown"
    } else if b["authenticated"] == true {
        "authenticated"
    } else if b["allowed_unauthenticated"] == true {
        "NOT auth (allowed)"
    } else {
        "NOT authenticated"
    };
    format!("{what}{rssi}")
}

fn print_device(d: &Value) {
    let s = |k: &str| d[k].as_str().unwrap_or("-").to_owned();
    let address = format!("{}:{}", s("transport"), s("address"));
    let state = if d["connected"] == true {
        "connected"
    } else {
        "disconnected"
    };
    let error = d["last_error"].as_str().unwrap_or("");
    device_row([
        &s("id"),
        &s("role"),
        &address,
        state,
        &bond_cell(d),
        &s("model"),
        &s("firmware"),
        error,
    ]);
}

fn print_data(id: &str, data: &Value) {
    let s = |k: &str| data.get(k).and_then(Value::as_str);
    if let Some(found) = data.get("found").and_then(Value::as_array) {
        scan::print_found(found);
        return;
    }
    if let Some(devices) = data.get("devices").and_then(Value::as_array) {
        if devices.is_empty() {
            println!("no paired devices (pair one with `posbridge pair serial:PATH --role ...`)");
            return;
        }
        device_row([
            "ID",
            "ROLE",
            "ADDRESS",
            "STATE",
            "BOND",
            "MODEL",
            "FIRMWARE",
            "LAST ERROR",
        ]);
        for d in devices {
            print_device(d);
        }
        return;
    }
    if data.get("transport").is_some() && data.get("role").is_some() {
        print_device(data);
        return;
    }
    if let Some(results) = data.get("results").and_then(Value::as_array) {
        for r in results {
            let resp = &r["response"];
            let outcome = resp["data"]["status"]
                .as_str()
                .or(resp["reason"].as_str())
                .unwrap_or(r["state"].as_str().unwrap_or("?"));
            println!(
                "{:<38} {:<11} {:<8} {:<12} {:>10} {}",
                r["request_id"].as_str().unwrap_or("?"),
                r["action"].as_str().unwrap_or("?"),
                r["provider"].as_str().unwrap_or("?"),
                outcome,
                resp["data"]["amount"]
                    .as_u64()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                r["updated_at"].as_str().unwrap_or("")
            );
        }
        return;
    }
    if let Some(journal) = data.get("journal") {
        println!(
            "posbridge {} up {} s, default provider {}",
            s("version").unwrap_or("?"),
            data["uptime_s"],
            s("default_provider").unwrap_or("?")
        );
        println!("  running     {}", data["running"]);
        println!(
            "  journal     {} of {} ({} in flight, {} unknown) {}",
            journal["entries"],
            journal["capacity"],
            journal["in_flight"],
            journal["unknown"],
            journal["path"].as_str().unwrap_or("")
        );
        let manual: Vec<&str> = data["manual_check"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !manual.is_empty() {
            println!(
                "  MANUAL CHECK {} (look each up, then `posbridge resolve ID --charged|--not-charged`)",
                manual.join(" ")
            );
        }
        for p in data["providers"].as_array().into_iter().flatten() {
            println!(
                "  provider    {} ({})",
                p["name"].as_str().unwrap_or("?"),
                p["operations"]
            );
        }
        return;
    }
    if s("operation") == Some("close_shift") {
        println!("shift {} closed", data["shift_number"]);
        for k in ["pay", "refund", "cancel"] {
            println!("  {k:<7} {} for {}", data[k]["count"], data[k]["total"]);
        }
        println!("  net     {} {}", data["net"], s("currency").unwrap_or(""));
        return;
    }
    println!(
        "{} {} {} via {}",
        s("status").unwrap_or("done"),
        data["amount"],
        s("currency").unwrap_or(""),
        s("provider").unwrap_or("?")
    );
    println!("  request_id         {id}");
    for key in ["provider_reference", "rrn", "approval_code"] {
        if let Some(v) = s(key) {
            println!("  {key:<18} {v}");
        }
    }
    if let Some(card) = data.get("card") {
        println!(
            "  card               {} {}",
            card["scheme"].as_str().unwrap_or(""),
            card["masked_pan"].as_str().unwrap_or("")
        );
    }
}
