#!/usr/bin/env python3
"""What the cashier waits for when a reader comes back (issue 20 item 3): from the reader being
there again to the daemon connected and ready to sell, timed on the guest's CLOCK_MONOTONIC.

  waits.py ble SINCE READER_LOG JOURNAL DEVICE_ID
      from each "advertising again at T" of ble-reader.py (the reader's first advertisement
      after a power cut) to bumble's "connected ... at T" (the link), the daemon's
      "connected over NUS" (GATT resolved, TX subscribed) and "DEVICE_ID connected (" (HELLO
      done: ready to sell)
  waits.py usb SINCE MONITOR_LOG JOURNAL DEVICE_ID
      from each tty add event of `udevadm monitor -k -u` (KERNEL: the kernel's uevent; UDEV: the
      rules done, the udev name there) to the daemon's "DEVICE_ID connected ("

JOURNAL is `journalctl -o short-monotonic`. Only events after SINCE count. Prints one line:
n, then p50 (min-max) of each wait in ms, then each event's figures.
"""
import re
import statistics
import sys

MONO = re.compile(r"^\[\s*([0-9]+\.[0-9]+)\]")


def journal_times(path, needle):
    out = []
    for line in open(path, errors="replace"):
        m = MONO.match(line)
        if m and needle in line:
            out.append(float(m.group(1)))
    return out


def first_after(times, t, until):
    later = [x for x in times if t <= x < until]
    return min(later) if later else None


def spread(name, waits):
    got = [w for w in waits if w is not None]
    if not got:
        return f"{name}: none"
    ms = [w * 1000 for w in got]
    missing = len(waits) - len(got)
    return (f"{name} p50 {statistics.median(ms):.0f} ms ({min(ms):.0f}-{max(ms):.0f})"
            + (f", {missing} never" if missing else ""))


def log_times(path, pattern, first):
    """Times (group 2) of the lines of `path` matching `pattern`, split by whether group 1 is
    `first`: (those that are, the others)."""
    ones, others = [], []
    for line in open(path, errors="replace"):
        m = re.search(pattern, line)
        if m:
            (ones if m.group(1) == first else others).append(float(m.group(2)))
    return ones, others


def main():
    kind, since, log, journal, device = sys.argv[1], float(sys.argv[2]), *sys.argv[3:6]
    ready = journal_times(journal, f"{device} connected (")
    if kind == "ble":
        starts, links = log_times(log, r"(advertising again|connected \S+) at ([0-9.]+)",
                                  "advertising again")
        starts = [t for t in starts if t >= since]
        nus = journal_times(journal, "connected over NUS")
        names = [("adv->link", links), ("adv->NUS", nus), ("adv->ready", ready)]
    else:
        kernel, udev = log_times(log, r"^(KERNEL|UDEV)\s*\[([0-9.]+)\]\s+add\s+\S+ \(tty\)",
                                 "KERNEL")
        starts = [t for t in kernel if t >= since]
        names = [("kernel add->udev add", udev), ("kernel add->ready", ready)]
    cols = {name: [] for name, _ in names}
    rows = []
    for i, t in enumerate(starts):
        until = starts[i + 1] if i + 1 < len(starts) else float("inf")
        row = []
        for name, times in names:
            x = first_after(times, t, until)
            cols[name].append(None if x is None else x - t)
            row.append("-" if x is None else f"{(x - t) * 1000:.0f}")
        rows.append("/".join(row))
    if kind == "usb":
        # From udev's add event (its rules done, the name there) to ready.
        cols["udev add->ready"] = [
            None if k is None or r is None else r - k
            for k, r in zip(cols["kernel add->udev add"], cols["kernel add->ready"])
        ]
    print(f"n={len(starts)}; " + "; ".join(spread(n, w) for n, w in cols.items())
          + f"; each ({'/'.join(n for n, _ in names)} ms): {' '.join(rows)}")
    # Exit 1 when a reader came back and the daemon was never ready: the caller's check.
    return 0 if starts and all(w is not None for w in cols[names[-1][0]]) else 1


if __name__ == "__main__":
    sys.exit(main())
