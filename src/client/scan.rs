//! `posbridge scan` for a person: the devices a scan hears, as a list on stderr that updates in
//! place on a terminal while the scan runs (from the scan's found events), then the table of
//! its answer on stdout. With `--json --progress`, the found event lines themselves on stdout.
//! Only shows: asks nothing of the daemon beyond the one request.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::cli::ClientArgs;

/// Longest name shown, so a row fits an 80-column terminal (the in-place list counts lines).
const NAME_WIDTH: usize = 32;

/// How a scan's found events are shown while it runs.
pub struct Heard {
    json: bool,
    terminal: bool,
    seconds: u64,
    /// The devices heard so far, in the order first heard (rows keep their place).
    devices: Vec<Value>,
    /// How many lines of the list are on the terminal now.
    drawn: usize,
}

impl Heard {
    /// `progress`: `--progress` (with `--json`, print the event lines).
    pub fn new(args: &ClientArgs, seconds: u64, progress: bool) -> Heard {
        Heard {
            json: args.json && progress,
            terminal: !args.json && std::io::stderr().is_terminal(),
            seconds,
            devices: Vec::new(),
            drawn: 0,
        }
    }

    /// Whether to ask the daemon for found events: with `--json --progress`, or for a person
    /// at a terminal. Elsewhere only the answer is printed, as a script expects.
    pub fn wanted(&self) -> bool {
        self.json || self.terminal
    }

    /// Shows one event line as it came.
    pub fn event(&mut self, event: &Value) {
        if self.json {
            println!("{event}");
            let _ = std::io::stdout().flush();
            return;
        }
        if !self.terminal || event["event"] != "found" {
            return;
        }
        let device = &event["device"];
        match self
            .devices
            .iter_mut()
            .find(|d| d["address"] == device["address"])
        {
            Some(known) => *known = device.clone(),
            None => self.devices.push(device.clone()),
        }
        let list = listing(self.seconds, &self.devices);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}{list}", self.erase());
        let _ = err.flush();
        self.drawn = list.lines().count();
    }

    /// Takes the list off the terminal before the answer's table is printed.
    pub fn done(&mut self) {
        if self.drawn > 0 {
            eprint!("{}", self.erase());
            let _ = std::io::stderr().flush();
            self.drawn = 0;
        }
    }

    /// Moves up over the list drawn and clears from there down.
    fn erase(&self) -> String {
        match self.drawn {
            0 => String::new(),
            n => format!("\x1b[{n}A\r\x1b[J"),
        }
    }
}

/// The list while the scan runs: a line saying so, the header, a row per device.
fn listing(seconds: u64, devices: &[Value]) -> String {
    let mut out = format!(
        "listening {seconds} s for readers ({} heard so far)\n{}\n",
        devices.len(),
        header()
    );
    for d in devices {
        out.push_str(&row(d));
        out.push('\n');
    }
    out
}

fn header() -> String {
    format!(
        "{:<20} {:>8}  {:<6} {:<6} NAME",
        "ADDRESS", "RSSI", "BONDED", "PAIRED"
    )
}

/// One device of a scan: address, RSSI in dBm, bonded, paired, name.
fn row(d: &Value) -> String {
    let yes_no = |key: &str| if d[key] == true { "yes" } else { "no" };
    let rssi = d["rssi"].as_i64().map(|r| format!("{r} dBm"));
    let name: String = d["name"]
        .as_str()
        .unwrap_or("-")
        .chars()
        .take(NAME_WIDTH)
        .collect();
    format!(
        "{:<20} {:>8}  {:<6} {:<6} {name}",
        d["address"].as_str().unwrap_or("?"),
        rssi.as_deref().unwrap_or("-"),
        yes_no("bonded"),
        yes_no("paired"),
    )
}

/// The table of a scan's answer (`data.found`, strongest first).
pub fn print_found(found: &[Value]) {
    if found.is_empty() {
        println!("no BLE device advertising the link service was heard");
        return;
    }
    println!("{}", header());
    for d in found {
        println!("{}", row(d));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_row_says_signal_bond_and_pairing_and_fits_a_terminal() {
        let d = json!({"address": "C0:FF:EE:00:00:01", "name": "x".repeat(80), "rssi": -48,
            "bonded": true, "paired": false});
        let line = row(&d);
        assert!(
            line.starts_with("C0:FF:EE:00:00:01     -48 dBm  yes    no     xxx"),
            "{line:?}"
        );
        assert!(
            line.chars().count() <= 80,
            "{} columns",
            line.chars().count()
        );
        let quiet = row(
            &json!({"address": "C0:FF:EE:00:00:02", "name": null, "rssi": null,
            "bonded": false, "paired": true}),
        );
        assert!(quiet.ends_with("-  no     yes    -"), "{quiet:?}");
    }

    #[test]
    fn the_list_updates_a_device_in_place_and_is_erased_at_the_end() {
        let args = ClientArgs {
            socket: None,
            json: false,
            timeout: 5,
        };
        let mut heard = Heard::new(&args, 5, false);
        heard.terminal = true; // as on a terminal, whatever runs the test
        let found = |rssi: i64| {
            json!({"event": "found", "request_id": null, "device": {
            "address": "C0:FF:EE:00:00:01", "name": "r", "rssi": rssi, "bonded": true,
            "paired": false}})
        };
        heard.event(&found(-60));
        assert_eq!(heard.drawn, 3);
        heard.event(&found(-40));
        assert_eq!((heard.devices.len(), heard.drawn), (1, 3));
        assert_eq!(heard.devices[0]["rssi"], -40);
        assert_eq!(heard.erase(), "\x1b[3A\r\x1b[J");
        heard.done();
        assert_eq!(heard.drawn, 0);
    }
}
