#!/usr/bin/env python3
"""Part 3's host side (hil/vm/run, boot 1): the cable and the hand that pulls it.

- Bridges qemu's usb-serial chardev (a unix socket, qemu the server) to the pty of
  `posbridge emulate card-reader` (the reader the tests use), bytes both ways.
- Unplugs and re-plugs the usb-serial device through QMP when the guest asks through the 9p
  share: it writes SHARE/unplug (or SHARE/plug); this writes SHARE/unplugged (or SHARE/plugged)
  with the time it took, once qemu confirmed (DEVICE_DELETED for an unplug).
- While the device is unplugged, what the reader sends is dropped, as on a real cable: qemu
  would otherwise keep it in the socket and hand it to the next device, which no reader does.
  The reader itself stays up with its pty open: it never learns the host went away, as a reader
  with its own power would not.

Usage: usb-host.py QMP_SOCKET CHARDEV_SOCKET READER_PTY SHARE_DIR
The device's id, bus, port and serial are the ones hil/vm/run gives qemu (us0, xhci.0, 1, SERIAL).

Faults, to see the steps fail (hil/vm/README.md, "Seen failing"), from the environment:
  USB_LOCAL_RULE=TEXT   the guest installs TEXT as 69-posbridge-local.rules instead of the
                        documented line (e.g. '# none')
  USB_FAULT=reader-dead-after-unplug   the reader never talks again after the unplug
"""
import json
import os
import select
import socket
import sys
import threading
import time
import tty

qmp_path, char_path, pty_path, share = sys.argv[1:5]
SERIAL = os.environ.get("USB_SERIAL", "PBR1A2B3C")
FAULT = os.environ.get("USB_FAULT", "")
plugged = threading.Event()
plugged.set()


def log(msg):
    print("usb-host %.3f: %s" % (time.time(), msg), flush=True)


def connect(path, timeout=300):
    end = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > end:
                raise
            time.sleep(0.1)


def open_pty():
    try:
        fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    tty.setraw(fd)
    log("reader pty open (%s)" % os.path.realpath(pty_path))
    return fd


def bridge():
    ser = connect(char_path)
    log("chardev connected")
    pty = None
    dropped = 0
    while True:
        if pty is None:
            pty = open_pty()
        fds = [ser] + ([pty] if pty is not None else [])
        r, _, _ = select.select(fds, [], [], 0.2)
        if ser in r:
            data = ser.recv(4096)
            if not data:
                log("chardev closed (qemu gone)")
                return
            if pty is not None:
                try:
                    os.write(pty, data)
                except OSError as e:
                    log("reader pty write: %s" % e)
                    os.close(pty)
                    pty = None
        if pty is not None and pty in r:
            try:
                data = os.read(pty, 4096)
            except OSError as e:
                data = b""
                log("reader pty: %s" % e)
            if not data:
                # The emulator is gone (its pty master closed): wait for the next one.
                os.close(pty)
                pty = None
                time.sleep(0.2)
                continue
            if plugged.is_set():
                ser.sendall(data)
            else:
                dropped += len(data)
                log("unplugged: dropped %d bytes from the reader (%d in all)" % (len(data), dropped))


class Qmp:
    def __init__(self, path):
        self.sock = connect(path)
        self.file = self.sock.makefile("rb")
        self.events = []
        self.read()  # greeting
        self.execute("qmp_capabilities")

    def read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("QMP closed")
        return json.loads(line)

    def execute(self, cmd, args=None):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            m = self.read()
            if "event" in m:
                self.events.append(m)
            elif "return" in m or "error" in m:
                return m

    def wait_event(self, name, timeout):
        self.sock.settimeout(timeout)
        try:
            while True:
                for e in self.events:
                    if e["event"] == name:
                        self.events.remove(e)
                        return e
                self.events.append(self.read())
        finally:
            self.sock.settimeout(None)


def answer(name, text):
    tmp = os.path.join(share, "." + name)
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.rename(tmp, os.path.join(share, name))


def hand():
    qmp = Qmp(qmp_path)
    log("QMP connected")
    while True:
        for ask, done in (("unplug", "unplugged"), ("plug", "plugged")):
            p = os.path.join(share, ask)
            if not os.path.exists(p):
                continue
            os.remove(p)
            t = time.time()
            if ask == "unplug":
                plugged.clear()
                r = qmp.execute("device_del", {"id": "us0"})
                ok = "return" in r
                if ok:
                    try:
                        qmp.wait_event("DEVICE_DELETED", 10)
                    except (socket.timeout, OSError):
                        ok = False
            else:
                r = qmp.execute("device_add", {"driver": "usb-serial", "bus": "xhci.0", "port": "1",
                                               "chardev": "ser0", "id": "us0", "serial": SERIAL})
                ok = "return" in r
                if ok and FAULT != "reader-dead-after-unplug":
                    plugged.set()
            took = time.time() - t
            log("%s: %s in %.2f s" % (ask, json.dumps(r), took))
            answer(done, "%s %.2f %s" % ("ok" if ok else "failed", took, json.dumps(r)))
        time.sleep(0.05)


def run(fn):
    try:
        fn()
    except Exception as e:  # qemu went away: the boot is over
        log("%s ended: %r" % (fn.__name__, e))
    os._exit(0)


os.makedirs(share, exist_ok=True)
if "USB_LOCAL_RULE" in os.environ:
    with open(os.path.join(share, "local.rules"), "w") as f:
        f.write(os.environ["USB_LOCAL_RULE"] + "\n")
if FAULT:
    log("fault: %s" % FAULT)
threading.Thread(target=run, args=(hand,), daemon=True).start()
run(bridge)
