//! Proves the pairing side of the mock BlueZ (tests/fixtures/bluez_bonds.py) with an agent of
//! its own, written here with the `dbus` crate and a hand-made dispatch loop: Pair is sent
//! without waiting, the agent's calls are answered as they come, then Pair's reply is read.
//! What is checked is what BlueZ 5.66 does (docs/devices-ble.md, "Pairing in the mock"); this
//! file does NOT test posbridge's own agent, which gets its tests against this mock. Run with
//! `cargo nextest` (one mock per process).

mod common;

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::bluez::{Bond, MockBluez};
use dbus::arg::{PropMap, Variant};
use dbus::channel::Channel;
use dbus::message::MessageType;
use dbus::strings::ErrorName;
use dbus::Message;

const READER: &str = "C0:FF:EE:00:00:01";
const DEVICE: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_01";
const AGENT: &str = "/posbridge/test/agent";
const DEVICE_IFACE: &str = "org.bluez.Device1";
const PROPS_IFACE: &str = "org.freedesktop.DBus.Properties";
const CHAR_IFACE: &str = "org.bluez.GattCharacteristic1";
/// A generous bound for any one answer on a shared, noisy machine (not a timing assertion).
const WAIT: Duration = Duration::from_secs(30);

const NO_BOND: Bond = Bond {
    paired: false,
    authenticated: false,
    trusted: false,
};

/// The mock with one NUS reader whose endpoint is a listening socket (Pair brings the link up).
struct Setup {
    mock: MockBluez,
    _endpoint: UnixListener,
}

fn setup(bonded: bool) -> Setup {
    let mock = MockBluez::start();
    let path = mock.dir().join("reader.sock");
    let endpoint = UnixListener::bind(&path).expect("bind the reader's endpoint");
    mock.add_nus_device(READER, "QPOS-mini", -48, &path, 185);
    if !bonded {
        mock.set_paired(READER, false);
    }
    Setup {
        mock,
        _endpoint: endpoint,
    }
}

fn connect(mock: &MockBluez) -> Channel {
    let mut channel = Channel::open_private(mock.bus_address()).expect("open the bus");
    channel.register().expect("register on the bus");
    channel
}

fn call(
    channel: &Channel,
    path: &str,
    iface: &str,
    method: &str,
    args: impl FnOnce(Message) -> Message,
) -> Result<Message, dbus::Error> {
    let message = Message::new_method_call("org.bluez", path, iface, method).unwrap();
    channel.send_with_reply_and_block(args(message), WAIT)
}

fn no_args(m: Message) -> Message {
    m
}

fn error_name<T: std::fmt::Debug>(result: Result<T, dbus::Error>) -> String {
    result.unwrap_err().name().unwrap_or("").to_string()
}

fn agent_manager(channel: &Channel, method: &str, path: &str) -> Result<Message, dbus::Error> {
    call(
        channel,
        "/org/bluez",
        "org.bluez.AgentManager1",
        method,
        |m| m.append1(dbus::Path::from(path)),
    )
}

fn register(channel: &Channel, capability: &str) -> Result<Message, dbus::Error> {
    call(
        channel,
        "/org/bluez",
        "org.bluez.AgentManager1",
        "RegisterAgent",
        |m| m.append2(dbus::Path::from(AGENT), capability),
    )
}

fn device_bool(channel: &Channel, name: &str) -> bool {
    let mut reply = call(channel, DEVICE, PROPS_IFACE, "Get", |m| {
        m.append2(DEVICE_IFACE, name)
    })
    .unwrap_or_else(|e| panic!("Get {name}: {e}"));
    let value: Variant<bool> = reply.as_result().unwrap().read1().unwrap();
    value.0
}

/// What one Pair call gave: its outcome (the error name on failure), every agent call seen as
/// "Member args", and every Device1 property change signalled meanwhile ("Name=value" for a
/// boolean, else "Name").
struct Paired {
    outcome: Result<(), String>,
    agent: Vec<String>,
    changed: Vec<String>,
}

/// Sends Pair on `channel` without waiting, answers the agent's requests with `answer` (a
/// request answered `None` gets no reply), acknowledges Cancel and DisplayPasskey, and returns
/// when Pair's reply comes.
fn pair(channel: &Channel, mut answer: impl FnMut(&Message) -> Option<Message>) -> Paired {
    watch_device(channel);
    let pair = Message::new_method_call("org.bluez", DEVICE, DEVICE_IFACE, "Pair").unwrap();
    let serial = channel.send(pair).expect("send Pair");
    let mut agent = Vec::new();
    let mut changed = Vec::new();
    let deadline = Instant::now() + 3 * WAIT;
    while Instant::now() < deadline {
        channel
            .read_write(Some(Duration::from_millis(100)))
            .expect("bus connection");
        while let Some(mut message) = channel.pop_message() {
            match message.msg_type() {
                MessageType::MethodCall => {
                    agent.push(describe(&message));
                    let reply = match message.member().as_deref() {
                        Some("RequestConfirmation") | Some("RequestPasskey") => answer(&message),
                        _ => Some(message.method_return()),
                    };
                    if let Some(reply) = reply.filter(|_| !message.get_no_reply()) {
                        channel.send(reply).expect("send the agent's answer");
                    }
                }
                MessageType::Signal => changed.extend(properties_changed(&message)),
                MessageType::MethodReturn | MessageType::Error
                    if message.get_reply_serial() == Some(serial) =>
                {
                    let outcome = message
                        .as_result()
                        .map(drop)
                        .map_err(|e| e.name().unwrap_or("").to_string());
                    return Paired {
                        outcome,
                        agent,
                        changed,
                    };
                }
                _ => {}
            }
        }
    }
    panic!("no answer to Pair; agent calls {agent:?}");
}

/// Asks the bus for the device's PropertiesChanged signals on `channel`.
fn watch_device(channel: &Channel) {
    let rule = format!(
        "type='signal',interface='{PROPS_IFACE}',member='PropertiesChanged',path='{DEVICE}'"
    );
    let add = Message::new_method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
    )
    .unwrap()
    .append1(rule);
    channel
        .send_with_reply_and_block(add, WAIT)
        .expect("AddMatch");
}

fn properties_changed(signal: &Message) -> Vec<String> {
    if signal.member().as_deref() != Some("PropertiesChanged") {
        return Vec::new();
    }
    let Ok((iface, props)) = signal.read2::<String, PropMap>() else {
        return Vec::new();
    };
    if iface != DEVICE_IFACE {
        return Vec::new();
    }
    let mut names: Vec<String> = props
        .iter()
        .map(|(name, value)| match value.0.arg_type() {
            dbus::arg::ArgType::Boolean => {
                format!("{name}={}", value.0.as_u64().unwrap_or(0) != 0)
            }
            _ => name.clone(),
        })
        .collect();
    names.sort();
    names
}

/// The next signalled change of the device's property `name` (after [`watch_device`]), as
/// "Name=value"; other changes (ServicesResolved coming late) are passed over.
fn next_change_of(channel: &Channel, name: &str) -> String {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        channel
            .read_write(Some(Duration::from_millis(100)))
            .expect("bus connection");
        while let Some(message) = channel.pop_message() {
            let changed = properties_changed(&message);
            if let Some(change) = changed.into_iter().find(|c| c.starts_with(name)) {
                return change;
            }
        }
    }
    panic!("no PropertiesChanged of {name} from the device");
}

fn describe(message: &Message) -> String {
    let member = message.member().map(|m| m.to_string()).unwrap_or_default();
    let args: Vec<String> = message
        .get_items()
        .iter()
        .map(|item| match item {
            dbus::arg::messageitem::MessageItem::ObjectPath(p) => p.to_string(),
            dbus::arg::messageitem::MessageItem::UInt32(n) => n.to_string(),
            dbus::arg::messageitem::MessageItem::UInt16(n) => n.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    format!("{member} {}", args.join(" "))
        .trim_end()
        .to_string()
}

fn confirm(request: &Message) -> Option<Message> {
    Some(request.method_return())
}

fn reject(request: &Message) -> Option<Message> {
    let name = ErrorName::new("org.bluez.Error.Rejected").unwrap();
    Some(request.error(&name, &CString::new("the technician said no").unwrap()))
}

fn calls(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(m, a)| (m.to_string(), a.to_string()))
        .collect()
}

#[test]
fn numeric_comparison_confirmed_bonds_authenticated_and_trusted_is_settable() {
    let s = setup(false);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        changed,
    } = pair(&agent, confirm);
    assert_eq!(outcome, Ok(()), "{}", s.mock.logs());
    assert_eq!(seen, [format!("RequestConfirmation {DEVICE} 123456")]);
    let bond = s.mock.bond(READER);
    assert!(
        bond.paired && bond.authenticated && !bond.trusted,
        "{bond:?}"
    );
    assert!(device_bool(&agent, "Paired") && device_bool(&agent, "Bonded"));
    assert!(device_bool(&agent, "Connected"), "Pair brings the link up");
    assert!(
        changed.contains(&"Connected=true".to_string()),
        "{changed:?}"
    );
    assert!(
        changed.ends_with(&["Bonded=true".to_string(), "Paired=true".to_string()]),
        "bonded when Pair answers: {changed:?}"
    );

    call(&agent, DEVICE, PROPS_IFACE, "Set", |m| {
        m.append3(DEVICE_IFACE, "Trusted", Variant(true))
    })
    .expect("Set Trusted");
    assert_eq!(next_change_of(&agent, "Trusted="), "Trusted=true");
    assert!(s.mock.bond(READER).trusted);
    let read_only = call(&agent, DEVICE, PROPS_IFACE, "Set", |m| {
        m.append3(DEVICE_IFACE, "Paired", Variant(false))
    });
    assert_eq!(
        error_name(read_only),
        "org.freedesktop.DBus.Error.PropertyReadOnly"
    );
    // A second Pair on a bonded device.
    let Paired {
        outcome: again,
        agent: seen,
        ..
    } = pair(&agent, confirm);
    assert_eq!(again, Err("org.bluez.Error.AlreadyExists".into()));
    assert!(seen.is_empty());
    agent_manager(&agent, "UnregisterAgent", AGENT).expect("UnregisterAgent");
    assert_eq!(
        error_name(agent_manager(&agent, "UnregisterAgent", AGENT)),
        "org.bluez.Error.DoesNotExist"
    );
}

#[test]
fn numeric_comparison_refused_leaves_no_bond() {
    let s = setup(false);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        changed,
    } = pair(&agent, reject);
    assert_eq!(outcome, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert_eq!(seen, [format!("RequestConfirmation {DEVICE} 123456")]);
    assert!(!changed.contains(&"Paired=true".to_string()), "{changed:?}");
    assert_eq!(s.mock.bond(READER), NO_BOND);
    assert!(!device_bool(&agent, "Paired"));
    assert!(
        !device_bool(&agent, "Connected"),
        "the link Pair opened is dropped"
    );
}

#[test]
fn just_works_bonds_unauthenticated_without_asking_the_agent() {
    let s = setup(false);
    s.mock.set_pairing_method(READER, "just_works", 0);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&agent, confirm);
    assert_eq!(outcome, Ok(()));
    assert!(seen.is_empty(), "{seen:?}");
    assert!(s.mock.agent_calls().is_empty());
    let bond = s.mock.bond(READER);
    assert!(bond.paired && !bond.authenticated, "{bond:?}");
}

#[test]
fn passkey_entry_wrong_fails_and_right_bonds() {
    let s = setup(false);
    s.mock.set_pairing_method(READER, "passkey_entry", 654321);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome: wrong,
        agent: seen,
        ..
    } = pair(&agent, |m| Some(m.method_return().append1(111111u32)));
    assert_eq!(wrong, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert_eq!(seen, [format!("RequestPasskey {DEVICE}")]);
    assert_eq!(s.mock.bond(READER), NO_BOND);

    let Paired { outcome: right, .. } =
        pair(&agent, |m| Some(m.method_return().append1(654321u32)));
    assert_eq!(right, Ok(()), "{}", s.mock.logs());
    assert!(s.mock.bond(READER).authenticated);
}

#[test]
fn passkey_display_shows_the_passkey_and_bonds_authenticated() {
    let s = setup(false);
    s.mock.set_pairing_method(READER, "passkey_display", 42);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&agent, |_| panic!("no request expected"));
    assert_eq!(outcome, Ok(()));
    assert_eq!(seen, [format!("DisplayPasskey {DEVICE} 42 0")]);
    assert!(s.mock.bond(READER).authenticated);
}

#[test]
fn without_an_agent_only_just_works_pairs_and_a_default_agent_serves_others() {
    let s = setup(false);
    let caller = connect(&s.mock);
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&caller, confirm);
    assert_eq!(outcome, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert!(seen.is_empty());
    assert_eq!(s.mock.bond(READER), NO_BOND);

    // Another connection's agent serves the caller only once it is the default one.
    let other = connect(&s.mock);
    register(&other, "KeyboardDisplay").expect("RegisterAgent");
    let Paired { outcome, .. } = pair(&caller, confirm);
    assert_eq!(outcome, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert!(
        s.mock.agent_calls().is_empty(),
        "{:?}",
        s.mock.agent_calls()
    );
    // A NoInputNoOutput agent of the caller's own cannot give MITM protection either.
    register(&caller, "NoInputNoOutput").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&caller, confirm);
    assert_eq!(outcome, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert!(seen.is_empty());
    agent_manager(&caller, "UnregisterAgent", AGENT).expect("UnregisterAgent");

    agent_manager(&other, "RequestDefaultAgent", AGENT).expect("RequestDefaultAgent");
    let pairing =
        std::thread::spawn(move || pair(&caller, |_| panic!("the caller has no agent")).outcome);
    // The default agent (on `other`) is asked; answer it here.
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        assert!(Instant::now() < deadline, "the default agent was not asked");
        other.read_write(Some(Duration::from_millis(100))).unwrap();
        if let Some(request) = other.pop_message() {
            if request.member().as_deref() == Some("RequestConfirmation") {
                other.send(request.method_return()).unwrap();
                break;
            }
        }
    }
    assert_eq!(pairing.join().unwrap(), Ok(()));
    assert!(s.mock.bond(READER).authenticated);

    s.mock.set_paired(READER, false);
    s.mock.set_pairing_method(READER, "just_works", 0);
    let lone = connect(&s.mock);
    let Paired { outcome, .. } = pair(&lone, confirm);
    assert_eq!(outcome, Ok(()), "just works needs no agent");
}

#[test]
fn agent_registration_errors_are_bluez_ones() {
    let s = setup(false);
    let agent = connect(&s.mock);
    assert_eq!(
        error_name(register(&agent, "Telepathy")),
        "org.bluez.Error.InvalidArguments"
    );
    assert_eq!(
        error_name(agent_manager(&agent, "UnregisterAgent", AGENT)),
        "org.bluez.Error.DoesNotExist"
    );
    assert_eq!(
        error_name(agent_manager(&agent, "RequestDefaultAgent", AGENT)),
        "org.bluez.Error.DoesNotExist"
    );
    register(&agent, "").expect("an empty capability is KeyboardDisplay");
    assert_eq!(
        error_name(register(&agent, "KeyboardDisplay")),
        "org.bluez.Error.AlreadyExists"
    );
    assert_eq!(
        error_name(agent_manager(&agent, "RequestDefaultAgent", "/elsewhere")),
        "org.bluez.Error.DoesNotExist"
    );
    // One agent per connection: another connection may register the same path.
    register(&connect(&s.mock), "DisplayYesNo").expect("a second connection's agent");
}

#[test]
fn an_agent_whose_connection_closes_is_dropped() {
    let s = setup(false);
    let caller = connect(&s.mock);
    let gone_name = {
        let agent = connect(&s.mock);
        register(&agent, "KeyboardDisplay").expect("RegisterAgent");
        agent_manager(&agent, "RequestDefaultAgent", AGENT).expect("RequestDefaultAgent");
        agent.unique_name().unwrap().to_string()
    };
    // The bus has seen the connection go (and told the mock) once the name has no owner.
    let bus = Message::new_method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameHasOwner",
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut reply = caller
            .send_with_reply_and_block(bus.duplicate().unwrap().append1(&gone_name), WAIT)
            .unwrap();
        let owned: bool = reply.as_result().unwrap().read1().unwrap();
        if !owned {
            break;
        }
        assert!(Instant::now() < deadline, "the agent's connection stays");
        std::thread::sleep(Duration::from_millis(20));
    }
    let Paired { outcome, .. } = pair(&caller, confirm);
    assert_eq!(outcome, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert!(
        s.mock.agent_calls().is_empty(),
        "the dropped agent was called: {:?}",
        s.mock.agent_calls()
    );
}

#[test]
fn pair_in_progress_cancel_and_cancel_without_pairing() {
    let s = setup(false);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let other = connect(&s.mock);
    let mut during = Vec::new();
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&agent, |_| {
        // The technician has not answered yet.
        let busy = call(&other, DEVICE, DEVICE_IFACE, "Pair", no_args);
        during.push(error_name(busy));
        call(&other, DEVICE, DEVICE_IFACE, "CancelPairing", no_args).expect("CancelPairing");
        None
    });
    assert_eq!(during, ["org.bluez.Error.InProgress"]);
    assert_eq!(
        outcome,
        Err("org.bluez.Error.AuthenticationCanceled".into())
    );
    assert_eq!(
        seen,
        [
            format!("RequestConfirmation {DEVICE} 123456"),
            "Cancel".into()
        ]
    );
    assert_eq!(s.mock.bond(READER), NO_BOND);

    // BlueZ 5.66 cancel_pairing with no pairing in flight removes the bond, then says so.
    s.mock.set_paired(READER, true);
    let cancel = call(&other, DEVICE, DEVICE_IFACE, "CancelPairing", no_args);
    assert_eq!(error_name(cancel), "org.bluez.Error.DoesNotExist");
    assert_eq!(s.mock.bond(READER), NO_BOND);
}

#[test]
fn an_unanswered_request_times_out_with_a_cancel() {
    let s = setup(false);
    s.mock.set_agent_timeout(0.5);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&agent, |_| None);
    assert_eq!(outcome, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert_eq!(
        seen,
        [
            format!("RequestConfirmation {DEVICE} 123456"),
            "Cancel".into()
        ]
    );
    assert_eq!(
        s.mock.agent_calls(),
        calls(&[
            ("RequestConfirmation", &format!("{DEVICE} 123456")),
            ("Cancel", "")
        ])
    );
    assert_eq!(s.mock.bond(READER), NO_BOND);
}

fn managed_objects(channel: &Channel) -> HashMap<dbus::Path<'static>, HashMap<String, PropMap>> {
    let mut reply = call(
        channel,
        "/",
        "org.freedesktop.DBus.ObjectManager",
        "GetManagedObjects",
        no_args,
    )
    .expect("GetManagedObjects");
    reply.as_result().unwrap().read1().unwrap()
}

#[test]
fn remove_device_takes_the_bond_and_the_device_comes_back_at_a_scan() {
    let s = setup(true);
    let channel = connect(&s.mock);
    call(&channel, DEVICE, DEVICE_IFACE, "Connect", no_args).expect("Connect");
    let device = dbus::Path::from(DEVICE);
    call(
        &channel,
        "/org/bluez/hci0",
        "org.bluez.Adapter1",
        "RemoveDevice",
        |m| m.append1(device.clone()),
    )
    .expect("RemoveDevice");
    let objects = managed_objects(&channel);
    assert!(
        !objects.keys().any(|p| p.starts_with(DEVICE)),
        "{:?}",
        objects.keys()
    );
    assert_eq!(s.mock.bond(READER), NO_BOND);
    let again = call(
        &channel,
        "/org/bluez/hci0",
        "org.bluez.Adapter1",
        "RemoveDevice",
        |m| m.append1(device.clone()),
    );
    assert_eq!(error_name(again), "org.bluez.Error.DoesNotExist");

    scan(&channel);
    assert!(managed_objects(&channel).contains_key(&device));
    assert!(
        !device_bool(&channel, "Paired"),
        "it comes back without a bond"
    );
    assert_eq!(s.mock.bond(READER), NO_BOND);
}

/// Discovery as clients start it (bluez5's mock wants a filter set first).
fn scan(channel: &Channel) {
    let adapter = "/org/bluez/hci0";
    call(
        channel,
        adapter,
        "org.bluez.Adapter1",
        "SetDiscoveryFilter",
        |m| m.append1(PropMap::new()),
    )
    .expect("SetDiscoveryFilter");
    call(
        channel,
        adapter,
        "org.bluez.Adapter1",
        "StartDiscovery",
        no_args,
    )
    .expect("StartDiscovery");
}

fn write_rx(channel: &Channel) -> Result<Message, dbus::Error> {
    let rx = format!("{DEVICE}/service000c/char000d");
    call(channel, &rx, CHAR_IFACE, "WriteValue", |m| {
        m.append2(vec![1u8, 2, 3], PropMap::new())
    })
}

fn start_notify(channel: &Channel) -> Result<Message, dbus::Error> {
    let tx = format!("{DEVICE}/service000c/char000f");
    call(channel, &tx, CHAR_IFACE, "StartNotify", no_args)
}

#[test]
fn a_reader_requiring_authentication_refuses_a_just_works_bond() {
    let s = setup(false);
    s.mock.set_requires_authentication(READER, true);
    s.mock.set_pairing_method(READER, "just_works", 0);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    assert_eq!(pair(&agent, confirm).outcome, Ok(()));
    call(&agent, DEVICE, DEVICE_IFACE, "Connect", no_args).expect("Connect");
    let refused = write_rx(&agent).unwrap_err();
    assert_eq!(refused.name(), Some("org.bluez.Error.NotPermitted"));
    assert_eq!(refused.message(), Some("Not paired"));
    assert_eq!(
        error_name(start_notify(&agent)),
        "org.bluez.Error.NotPermitted"
    );
    assert!(s.mock.writes(READER).is_empty());

    let device = dbus::Path::from(DEVICE);
    call(
        &agent,
        "/org/bluez/hci0",
        "org.bluez.Adapter1",
        "RemoveDevice",
        |m| m.append1(device),
    )
    .expect("RemoveDevice");
    scan(&agent);
    s.mock
        .set_pairing_method(READER, "numeric_comparison", 123456);
    assert_eq!(pair(&agent, confirm).outcome, Ok(()));
    call(&agent, DEVICE, DEVICE_IFACE, "Connect", no_args).expect("Connect");
    write_rx(&agent).expect("an authenticated bond may write");
    start_notify(&agent).expect("and listen");
    assert_eq!(
        s.mock.writes(READER),
        [(vec![1u8, 2, 3], "request".to_string())]
    );
}

#[test]
fn the_reader_saying_no_fails_pair_after_the_technician_confirmed() {
    let s = setup(false);
    s.mock
        .set_pairing_method(READER, "numeric_comparison_reader_says_no", 777777);
    let agent = connect(&s.mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&agent, confirm);
    assert_eq!(outcome, Err("org.bluez.Error.AuthenticationFailed".into()));
    assert_eq!(seen, [format!("RequestConfirmation {DEVICE} 777777")]);
    assert_eq!(s.mock.bond(READER), NO_BOND);
}

#[test]
fn pair_with_a_reader_out_of_reach_fails_to_connect_and_asks_nobody() {
    let mock = MockBluez::start();
    let nowhere = mock.dir().join("nobody-listens.sock");
    mock.add_nus_device(READER, "QPOS-mini", -48, &nowhere, 185);
    mock.set_paired(READER, false);
    let agent = connect(&mock);
    register(&agent, "KeyboardDisplay").expect("RegisterAgent");
    let Paired {
        outcome,
        agent: seen,
        ..
    } = pair(&agent, confirm);
    assert_eq!(
        outcome,
        Err("org.bluez.Error.ConnectionAttemptFailed".into())
    );
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(mock.bond(READER), NO_BOND);
}
