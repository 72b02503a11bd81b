//! A mock BlueZ on a private system D-Bus, for BLE tests without a radio (see
//! docs/devices-ble.md and tests/fixtures/bluez_nus.py). `MockBluez::start` runs a `dbus-daemon`
//! of type system in a temp dir, python-dbusmock with our template on it, points this test
//! process's `DBUS_SYSTEM_BUS_ADDRESS` at it and waits until `org.bluez` is there. Dropping it
//! kills both. libdbus reads the bus address once per process, so there is one mock per test
//! process: run BLE tests with `cargo nextest` (one process per test).
//!
//! Pairing: the mock's `org.bluez.AgentManager1` and `Device1.Pair` behave as BlueZ 5.66 (see
//! tests/fixtures/bluez_bonds.py); `set_pairing_method`, `set_requires_authentication`,
//! `set_agent_timeout`, `bond` and `agent_calls` drive and read them. tests/bluez_mock_pairing.rs
//! proves that side of the mock with an agent of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbus::blocking::Connection;
use dbus::channel::Channel;

const MOCK_IFACE: &str = "org.bluez.Mock";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MockBluez {
    // Field order is drop order: the processes go before their directory.
    processes: Processes,
    dir: tempfile::TempDir,
    address: String,
    control: Connection,
}

/// The bus and the mock, killed on drop — also when `start` panics half-way.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl MockBluez {
    /// Starts the bus and the mock with one adapter, `hci0`.
    pub fn start() -> MockBluez {
        static STARTED: AtomicBool = AtomicBool::new(false);
        assert!(
            !STARTED.swap(true, Ordering::SeqCst),
            "one mock BlueZ per test process (libdbus reads the bus address once): \
             run BLE tests with cargo nextest"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("system.conf");
        std::fs::write(&config, bus_config(&socket)).unwrap();
        let mut processes = Processes(Vec::new());
        processes.0.push(spawn_bus(dir.path(), &config));
        let address = format!("unix:path={}", socket.display());
        let deadline = Instant::now() + Duration::from_secs(30);
        let control = connect_control(&address, deadline);
        // Before anything in this process touches the system bus: libdbus reads it once.
        std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &address);
        processes.0.push(spawn_mock(dir.path(), &address));
        let mut started = MockBluez {
            processes,
            dir,
            address,
            control,
        };
        started.wait_for_bluez(deadline);
        started
    }

    /// `systemctl restart dbus` with BlueZ on it: the bus and the mock are killed and started
    /// again at the same address. Every connection to the old bus is dead; the new mock has the
    /// adapter `hci0` and no devices.
    #[allow(dead_code)]
    pub fn restart_bus(&mut self) {
        for child in self.processes.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.processes.0.clear();
        let socket = self.dir.path().join("system_bus_socket");
        let _ = std::fs::remove_file(&socket);
        let config = self.dir.path().join("system.conf");
        self.processes.0.push(spawn_bus(self.dir.path(), &config));
        let deadline = Instant::now() + Duration::from_secs(30);
        self.control = connect_control(&self.address, deadline);
        self.processes
            .0
            .push(spawn_mock(self.dir.path(), &self.address));
        self.wait_for_bluez(deadline);
    }

    fn wait_for_bluez(&mut self, deadline: Instant) {
        let dbus = self.control.with_proxy(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            CALL_TIMEOUT,
        );
        loop {
            let (owned,): (bool,) = dbus
                .method_call("org.freedesktop.DBus", "NameHasOwner", ("org.bluez",))
                .expect("NameHasOwner");
            if owned {
                return;
            }
            if let Ok(Some(status)) = self.processes.0[1].try_wait() {
                panic!("mock BlueZ exited ({status}):\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "mock BlueZ did not start:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn bus_address(&self) -> &str {
        &self.address
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The mock's call log and stderr, for failure messages.
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- mock.log\n{}\n--- mock.stderr\n{}",
            read("mock.log"),
            read("mock.stderr")
        )
    }

    fn call<A: dbus::arg::AppendAll, R: dbus::arg::ReadAll>(&self, method: &str, args: A) -> R {
        self.control
            .with_proxy("org.bluez", "/", CALL_TIMEOUT)
            .method_call(MOCK_IFACE, method, args)
            .unwrap_or_else(|e| panic!("mock {method}: {e}\n{}", self.logs()))
    }

    /// Takes the adapter away, as when a dongle is unplugged or bluetoothd restarts.
    pub fn remove_adapter(&self, name: &str) {
        let () = self.call("RemoveAdapter", (name,));
    }

    /// A peripheral advertising NUS whose device side is the socket or pty at `endpoint`.
    pub fn add_nus_device(&self, address: &str, name: &str, rssi: i16, endpoint: &Path, mtu: u16) {
        let endpoint = endpoint.to_str().expect("utf-8 path").to_string();
        let _: (dbus::Path<'static>,) =
            self.call("AddNusDevice", ("hci0", address, name, rssi, endpoint, mtu));
    }

    /// Like [`MockBluez::add_nus_device`], but BlueZ learns of it only at the next scan.
    pub fn add_nus_device_on_scan(
        &self,
        address: &str,
        name: &str,
        rssi: i16,
        endpoint: &Path,
        mtu: u16,
    ) {
        let endpoint = endpoint.to_str().expect("utf-8 path").to_string();
        let _: () = self.call(
            "AddNusDeviceOnScan",
            ("hci0", address, name, rssi, endpoint, mtu),
        );
    }

    /// A peripheral that advertises nothing posbridge cares about (bluez5's plain device).
    pub fn add_plain_device(&self, address: &str, name: &str) {
        let _: (String,) = self.call("AddDevice", ("hci0", address, name));
    }

    /// The next call of `method` fails with D-Bus error `error_name`.
    pub fn fail_next(&self, method: &str, error_name: &str, message: &str) {
        let _: () = self.call("FailNext", (method, error_name, message));
    }

    /// The device's next Introspect answer makes bluez-async panic.
    pub fn break_next_introspection(&self, address: &str) {
        let _: () = self.call("BreakNextIntrospection", (address,));
    }

    /// Whether BlueZ holds a bond with the device (NUS devices start bonded).
    pub fn set_paired(&self, address: &str, paired: bool) {
        let _: () = self.call("SetPaired", (address, paired));
    }

    /// At the device's next connect BlueZ bonds with it by Just Works (its own security raise).
    pub fn bond_on_next_connect(&self, address: &str) {
        let _: () = self.call("BondOnNextConnect", (address,));
    }

    /// At the device's next connect its services never resolve (a stale link).
    pub fn stall_services_once(&self, address: &str) {
        let _: () = self.call("StallServicesOnce", (address,));
    }

    /// The device drops the link.
    pub fn disconnect_from_device(&self, address: &str) {
        let _: () = self.call("DisconnectFromDevice", (address,));
    }

    /// Every RX write the device received: (value, "request" | "command").
    pub fn writes(&self, address: &str) -> Vec<(Vec<u8>, String)> {
        let (writes,): (Vec<(Vec<u8>, String)>,) = self.call("GetWrites", (address,));
        writes
    }

    /// How `Device1.Pair` goes on the device when it has no bond: `"numeric_comparison"` (the
    /// default, passkey 123456), `"passkey_entry"`, `"passkey_display"` or `"just_works"`.
    pub fn set_pairing_method(&self, address: &str, method: &str, passkey: u32) {
        let _: () = self.call("SetPairingMethod", (address, method, passkey));
    }

    /// Whether the reader's NUS characteristics refuse a link whose bond is not authenticated
    /// (`org.bluez.Error.NotPermitted` "Not paired", as BlueZ turns ATT error 0x05).
    pub fn set_requires_authentication(&self, address: &str, required: bool) {
        let _: () = self.call("SetRequiresAuthentication", (address, required));
    }

    /// How long an agent request may go unanswered before BlueZ gives up (60 s by default).
    pub fn set_agent_timeout(&self, seconds: f64) {
        let _: () = self.call("SetAgentTimeout", (seconds,));
    }

    /// The bond BlueZ holds with the device (all false once `RemoveDevice` took it).
    pub fn bond(&self, address: &str) -> Bond {
        let (paired, authenticated, trusted): (bool, bool, bool) = self.call("GetBond", (address,));
        Bond {
            paired,
            authenticated,
            trusted,
        }
    }

    /// Every call the mock made to an agent, in order: (method, its arguments as text).
    pub fn agent_calls(&self) -> Vec<(String, String)> {
        let (calls,): (Vec<(String, String)>,) = self.call("GetAgentCalls", ());
        calls
    }
}

/// What [`MockBluez::bond`] reports: `authenticated` only for a bond made by Pair with numeric
/// comparison or a passkey (a bond from `SetPaired` or the start is of unknown kind: false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bond {
    pub paired: bool,
    pub authenticated: bool,
    pub trusted: bool,
}

/// A log file that survives restarts of what writes it (a restarted bus appends).
fn append_log(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn spawn_bus(dir: &Path, config: &Path) -> Child {
    Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .arg("--nopidfile")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(append_log(&dir.join("dbus-daemon.log")))
        .spawn()
        .expect("dbus-daemon (apt-get install dbus)")
}

/// The test's own connection to the bus at `address`. The socket file appears at bind(), a
/// moment before the daemon accepts: retry.
fn connect_control(address: &str, deadline: Instant) -> Connection {
    loop {
        match Channel::open_private(address).and_then(|mut channel| {
            channel.register()?;
            Ok(channel)
        }) {
            Ok(channel) => return Connection::from(channel),
            Err(e) => {
                assert!(Instant::now() < deadline, "dbus-daemon did not start: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn spawn_mock(dir: &Path, address: &str) -> Child {
    Command::new(python())
        .args(["-m", "dbusmock", "--system", "--template"])
        .arg(template())
        .arg("-l")
        .arg(dir.join("mock.log"))
        .env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(append_log(&dir.join("mock.stderr")))
        .spawn()
        .expect("python3 -m dbusmock (apt-get install python3-dbusmock)")
}

/// Debian's python has python3-dbusmock; a python3 earlier on PATH (pyenv) may not.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("POSBRIDGE_TEST_PYTHON") {
        return p.into();
    }
    let debian = PathBuf::from("/usr/bin/python3");
    if debian.exists() {
        debian
    } else {
        "python3".into()
    }
}

fn template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bluez_nus.py")
}

fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow send_type="method_call"/>
    <allow send_type="method_return"/>
    <allow send_type="signal"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="signal"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

/// Adds adapter `name` to the mock on the bus at `address` (from another thread: a dongle
/// that comes late).
pub fn add_adapter_on(address: &str, name: &str) {
    let mut channel = dbus::channel::Channel::open_private(address).expect("open the bus");
    channel.register().expect("register on the bus");
    let conn = dbus::blocking::Connection::from(channel);
    let _: (String,) = conn
        .with_proxy("org.bluez", "/", CALL_TIMEOUT)
        .method_call(MOCK_IFACE, "AddAdapter", (name, "posbridge-test"))
        .expect("mock AddAdapter");
}
