//! Pay -> amount on the reader over a serial pty: the release daemon with the `lifepay`
//! provider, `posbridge emulate card-reader` on a pty paired to it, timed from the POS's pay
//! request written to the reader's log line for the START_SALE it received (read from the
//! emulator's stderr through a pipe, stamped as it arrives). The reader's own 200 ms for the
//! card and the acquirer come after that line and are not in the figure.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{lifepay_config, Conn, Daemon, Dist, BIN};

/// Ends in neither 51 (declined) nor 93 (3 s): approved after the reader's 200 ms.
const AMOUNT: u64 = 2500;

struct Reader {
    child: Child,
    /// When each "sale AMOUNT" line reached us.
    sales: mpsc::Receiver<Instant>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_reader(link: &Path) -> Reader {
    let mut child = Command::new(BIN)
        .args(["emulate", "card-reader", "--pty"])
        .arg(link)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start posbridge emulate card-reader");
    let stderr = child.stderr.take().expect("piped stderr");
    let (linked_tx, linked) = mpsc::channel();
    let (sales_tx, sales) = mpsc::channel();
    let sale = format!(": sale {AMOUNT} ");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            let at = Instant::now();
            if line.contains("linked at") {
                let _ = linked_tx.send(());
            } else if line.contains(&sale) {
                let _ = sales_tx.send(at);
            }
        }
    });
    linked
        .recv_timeout(Duration::from_secs(20))
        .expect("the emulated reader linked its pty within 20 s");
    Reader { child, sales }
}

/// `n` lifepay pays through a paired emulated reader (after a few to warm up): from each pay
/// request to the amount on the reader. `None` (with the reason printed) if the rig fails.
pub fn amount_on_reader(n: usize) -> Option<Dist> {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("reader");
    let reader = start_reader(&link);
    let config = lifepay_config(dir.path(), "bench-shop", "bench-pass-5c1e");
    let daemon = Daemon::start(dir.path(), Some(&config));
    let mut c = Conn::open(&daemon.socket);
    let paired = c
        .call(&format!(
            "{{\"action\":\"pair\",\"address\":\"serial:{}\",\"role\":\"card-reader\"}}\n",
            link.display()
        ))
        .to_owned();
    if !paired.starts_with("{\"code\":0") {
        println!("pay -> amount on the reader: pairing failed: {paired}");
        return None;
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 5 {
        while reader.sales.try_recv().is_ok() {}
        let t = Instant::now();
        c.pay("lifepay", &format!("reader-{i}"), AMOUNT);
        let Ok(seen) = reader.sales.recv_timeout(Duration::from_secs(10)) else {
            println!("pay -> amount on the reader: the reader logged no sale for reader-{i}");
            return None;
        };
        if i >= 5 {
            times.push(seen - t);
        }
    }
    Some(Dist::new(times))
}
