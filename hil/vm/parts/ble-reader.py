"""hil/vm part 4: a BLE card reader for the real BlueZ in the guest, run with /opt/bumble/bin/python.

Two bumble controllers share one in-process LocalLink (a radio without radios):
- "hci0" sits on /dev/vhci, so the kernel sees an ordinary Bluetooth adapter that bluetoothd
  drives;
- "reader" is a bumble peripheral at public address ADDR serving the Nordic UART Service, and
  advertising it, like a posbridge BLE card reader.

The reader's firmware is not here: it is `posbridge emulate card-reader --pty LINK` (the same
logic the tests use). This script only bridges: bytes written to NUS RX go to the pty, bytes from
the pty go out as TX notifications.

It pairs as a reader with a display and yes/no keys would (issue 22): LE Secure Connections, MITM,
bonding, io capability DisplayYesNo. On numeric comparison it prints `ble-reader: code NNNNNN`
(its "display") and presses yes, unless /run/ble/confirm says `no`. /run/ble/pairing says which
reader it is, read at each pairing: `numeric` (the default, as above) or `just-works` (a reader
with no display or keys: NoInputNoOutput, no MITM). RX and TX require an authenticated encrypted
link (a bond made by numeric comparison; bumble answers "insufficient authentication" otherwise)
in numeric mode, and encryption only in just-works mode, so a bond the operator allowed can sell;
/run/ble/require (`authentication` or `encryption`) overrides that, and /run/ble/display `wrong`
makes the display show another code than the one it computed (what a man in the middle looks like
from the counter). Keys stay in memory; a host that pairs again overwrites its keys. Each pairing's
outcome goes to the log (`ble-reader: paired with ADDR authenticated=True|False`, `ble-reader:
pairing failed: REASON`); after a failed pairing the reader drops the link from its side (a
host-side disconnect would leave it half-open, see below).

SIGUSR2 drops every link from the peripheral's side; SIGUSR1 is a reader power cut: every link is dropped from the peripheral's side (a host-side
disconnect leaves the kernel's link half-open with bumble, see shared/vm-rig.md §4.4) and the
reader stays off the air for --off-air seconds.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys
import termios
import time
import tty

from bumble import controller as bumble_controller
from bumble.controller import Controller
from bumble.core import AdvertisingData, PhysicalTransport
from bumble.device import Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address, OwnAddressType
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.smp import PairingMethod
from bumble.transport import open_transport

NUS = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"
RX = "6E400002-B5A3-F393-E0A9-E50E24DCCA9E"
TX = "6E400003-B5A3-F393-E0A9-E50E24DCCA9E"


def fix_local_link_acl_source() -> None:
    """bumble 0.0.236 tags LE ACL data on a LocalLink with the sender controller's random
    address, while the kernel connects with its public one: the peer then drops every ATT packet
    ("no connection for ..."). Send with the connection's own address. Check again whenever
    bumble is upgraded (hil/vm/bumble-requirements.txt)."""

    def on_acl_pdu(self, pdu: bytes) -> None:
        link = self.link
        if not link:
            return
        if self.transport == PhysicalTransport.LE:
            dest = link.find_le_controller(self.peer_address)
            source = self.self_address
        else:
            dest = link.find_classic_controller(self.peer_address)
            source = self.controller.public_address
        if dest is not None:
            transport = self.transport
            asyncio.get_running_loop().call_soon(
                lambda: dest.on_link_acl_data(source, transport, pdu)
            )

    bumble_controller.Connection.on_acl_pdu = on_acl_pdu


def control(name: str, default: str) -> str:
    """A control file of /run/ble (the part's knobs), or DEFAULT when there is none."""
    try:
        return open(f"/run/ble/{name}").read().strip() or default
    except OSError:
        return default


class ReaderKeys(PairingDelegate):
    """The reader's display and yes/no keys during one pairing."""

    async def compare_numbers(self, number: int, digits: int) -> bool:
        shown = (number + 1) % 1000000 if control("display", "right") == "wrong" else number
        print(f"ble-reader: code {shown:06d}", flush=True)
        return await self.confirm()

    async def confirm(self, auto: bool = False) -> bool:
        if self.io_capability == PairingDelegate.NO_OUTPUT_NO_INPUT:
            return True  # Just Works on a reader with no keys: nobody is asked
        yes = control("confirm", "yes") != "no"
        print(f"ble-reader: the technician pressed {'yes' if yes else 'no'} on the reader",
              flush=True)
        return yes

    async def display_number(self, number: int, digits: int) -> None:
        print(f"ble-reader: passkey {number:06d}", flush=True)

    async def get_number(self) -> int | None:
        return None  # no keyboard: a passkey to type is refused


class Security:
    """What the reader asks of a link before NUS answers, and what each link has.

    bumble marks every encrypted LE link "authenticated" (and every pairing, Just Works too); the
    truth is whether the link's key came from an authenticated (MITM-protected) pairing: kept here
    per host, in memory, beside bumble's own keys, and put on the connection when it is encrypted."""

    def __init__(self, device: Device, chars: list):
        self.device = device
        self.chars = [(char, char.permissions) for char in chars]
        self.authenticated_keys: dict[str, bool] = {}
        self.apply(control("pairing", "numeric"))

    def apply(self, mode: str) -> None:
        need = control("require", "encryption" if mode == "just-works" else "authentication")
        extra = Characteristic.READ_REQUIRES_ENCRYPTION | Characteristic.WRITE_REQUIRES_ENCRYPTION
        if need == "authentication":
            extra |= (Characteristic.READ_REQUIRES_AUTHENTICATION
                      | Characteristic.WRITE_REQUIRES_AUTHENTICATION)
        for char, base in self.chars:
            char.permissions = base | extra

    def pairing_config(self, connection) -> PairingConfig:
        mode = control("pairing", "numeric")
        self.apply(mode)
        if mode == "just-works":
            keys = ReaderKeys(io_capability=PairingDelegate.NO_OUTPUT_NO_INPUT)
            return PairingConfig(sc=True, mitm=False, bonding=True, delegate=keys)
        keys = ReaderKeys(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        return PairingConfig(sc=True, mitm=True, bonding=True, delegate=keys)

    def watch(self, connection) -> None:
        def encrypted() -> None:
            session = self.device.smp_manager.sessions.get(connection.handle)
            if not connection.encryption:
                connection.authenticated = False
            elif session is not None and not session.completed:  # pairing: its method says
                connection.authenticated = session.pairing_method != PairingMethod.JUST_WORKS
            else:  # a bonded host came back: its key says
                connection.authenticated = self.authenticated_keys.get(str(connection.peer_address), False)

        def paired(keys) -> None:
            key = keys.ltk or keys.ltk_peripheral
            authenticated = bool(key and key.authenticated)
            self.authenticated_keys[str(connection.peer_address)] = authenticated
            connection.authenticated = authenticated
            print(f"ble-reader: paired with {connection.peer_address} "
                  f"authenticated={authenticated}", flush=True)

        def failed(reason) -> None:
            print(f"ble-reader: pairing failed: {getattr(reason, 'name', reason)}", flush=True)

            async def drop() -> None:
                await asyncio.sleep(0.2)  # the Pairing Failed PDU goes out first
                try:
                    await connection.disconnect()
                except Exception as e:
                    logging.warning("disconnect after a failed pairing: %s", e)

            asyncio.ensure_future(drop())

        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, encrypted)
        connection.on(connection.EVENT_PAIRING, paired)
        connection.on(connection.EVENT_PAIRING_FAILURE, failed)


class Bridge:
    def __init__(self, device: Device, pty_path: str):
        self.device = device
        self.pty_path = pty_path
        self.fd = -1
        self.tx = None

    async def open_pty(self) -> None:
        for _ in range(300):
            if os.path.exists(self.pty_path):
                break
            await asyncio.sleep(0.1)
        self.fd = os.open(self.pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd, termios.TCSANOW)
        asyncio.get_running_loop().add_reader(self.fd, self.on_pty)

    def on_rx(self, connection, value: bytes) -> None:
        if self.fd >= 0:
            os.write(self.fd, bytes(value))

    def on_pty(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:  # the emulator went away (EIO): its pty is gone
            data = b""
        if data:
            asyncio.ensure_future(self.notify(data))
            return
        # The firmware restarted: follow its new pty once the link points there.
        old = os.path.realpath(self.pty_path)
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)
        self.fd = -1
        asyncio.ensure_future(self.reopen(old))

    async def reopen(self, old: str) -> None:
        for _ in range(300):
            await asyncio.sleep(0.1)
            if os.path.exists(self.pty_path) and os.path.realpath(self.pty_path) != old:
                break
        await self.open_pty()
        print("ble-reader: bridged to the emulator's new pty", flush=True)

    async def notify(self, data: bytes) -> None:
        for connection in list(self.device.connections.values()):
            size = max(connection.att_mtu - 3, 20)
            for i in range(0, len(data), size):
                try:
                    await self.device.notify_subscriber(connection, self.tx, data[i : i + size])
                except Exception as e:  # a link that went away mid-notification
                    logging.warning("notify: %s", e)
                    break


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="C0:FF:EE:00:00:01")
    ap.add_argument("--name", default="posbridge-vm-reader")
    ap.add_argument("--pty", required=True, help="the emulator's pty link")
    ap.add_argument("--off-air", type=float, default=3.0)
    args = ap.parse_args()
    fix_local_link_acl_source()

    link = LocalLink()
    transport = await open_transport("vhci")
    Controller("hci0", host_source=transport.source, host_sink=transport.sink, link=link,
               public_address="C0:FF:EE:00:00:10")
    chip = Controller("reader", link=link, public_address=args.address)
    device = Device.with_hci(args.name, Address("F0:F1:F2:F3:F4:F5"), chip, chip)
    bridge = Bridge(device, args.pty)
    # The permissions are set by Security (numeric: authenticated, just-works: encrypted).
    rx = Characteristic(
        RX,
        Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
        Characteristic.WRITEABLE,
        CharacteristicValue(write=bridge.on_rx),
    )
    tx = Characteristic(
        TX,
        Characteristic.Properties.NOTIFY | Characteristic.Properties.READ,
        Characteristic.READABLE,
        b"",
    )
    bridge.tx = tx
    security = Security(device, [rx, tx])
    device.pairing_config_factory = security.pairing_config
    device.add_service(Service(NUS, [rx, tx]))
    await bridge.open_pty()
    await device.power_on()

    adv = bytes(AdvertisingData([
        (AdvertisingData.FLAGS, bytes([0x06])),
        (AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
         bytes.fromhex(NUS.replace("-", ""))[::-1]),
    ]))
    scan_rsp = bytes(AdvertisingData([
        (AdvertisingData.COMPLETE_LOCAL_NAME, args.name.encode()),
    ]))

    async def advertise() -> None:
        # The advertising interval: bumble's default 1000 ms, or /run/ble/adv-ms (ms) when the
        # part asks for another (ble.back-on-air: a connection needs the advertisement after
        # the one the host saw, so the interval is the floor of coming back).
        # (Given every time: bumble keeps the last interval it was given.)
        try:
            interval = float(open("/run/ble/adv-ms").read())
        except (OSError, ValueError):
            interval = 1000.0
        await device.start_advertising(
            own_address_type=OwnAddressType.PUBLIC, auto_restart=True,
            advertising_data=adv, scan_response_data=scan_rsp,
            advertising_interval_min=interval, advertising_interval_max=interval,
        )

    async def power_cut() -> None:
        await device.stop_advertising()
        for connection in list(device.connections.values()):
            try:
                await connection.disconnect()
            except Exception as e:
                logging.warning("disconnect: %s", e)
        try:  # a control run asks for a longer cut
            off_air = float(open("/run/ble/off-air").read())
        except (OSError, ValueError):
            off_air = args.off_air
        print(f"ble-reader: links dropped, off the air for {off_air} s", flush=True)
        await asyncio.sleep(off_air)
        await advertise()
        # CLOCK_MONOTONIC, as journalctl -o short-monotonic: parts/waits.py times the daemon's
        # reconnect from here (the reader's first advertisement after the cut).
        print(f"ble-reader: advertising again at {time.monotonic():.6f} "
              f"(wall {time.time():.6f})", flush=True)

    async def drop_links() -> None:
        for connection in list(device.connections.values()):
            await connection.disconnect()
        print("ble-reader: links dropped", flush=True)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(power_cut()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(drop_links()))
    def on_connection(connection) -> None:
        security.watch(connection)
        print(f"ble-reader: connected {connection.peer_address} at {time.monotonic():.6f}",
              flush=True)

    device.on("connection", on_connection)
    await advertise()
    print(f"ble-reader: advertising {args.address} as {args.name}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("BLE_READER_LOG", "WARNING"))
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
