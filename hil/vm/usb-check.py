#!/usr/bin/env python3
"""Part 3's host verdict: the emulated reader's own state file (what it charged) against the
daemon's final answers the guest wrote (hil/vm/parts/usb.sh: one line per sale,
`request_id backend_id final_status`). Every sale charged at most once, approved exactly when
the reader charged it, and no charge the daemon does not know of.

Usage: usb-check.py READER_STATE SALES
"""
import json
import sys

try:
    state = json.load(open(sys.argv[1]))
    sales = [l.split() for l in open(sys.argv[2]) if l.strip()]
except (OSError, ValueError) as e:
    print("STEP usb.charged-once: FAIL cannot read the reader's state or the sales: %s" % e)
    sys.exit(0)

bad = []
figures = []
approved = 0
for fields in sales:
    rid, bid, final = (fields + ["", "", ""])[:3]
    n = len([r for r in state.get("results", []) if r.get("request_id") == bid and r.get("outcome") == "approved"])
    figures.append("%s %s/%d" % (rid, final or "?", n))
    if final == "approved":
        approved += 1
    if n > 1 or (final == "approved") != (n == 1) or not bid:
        bad.append("%s: daemon %s, reader charged %d times" % (rid, final or "?", n))
charges = state.get("charges", 0)
if charges != approved:
    bad.append("the reader made %d charges, the daemon approved %d" % (charges, approved))
verdict = "FAIL" if bad or not sales else "PASS"
print("STEP usb.charged-once: %s the reader's state on the host: %d charges for %d sales (answer/charges: %s)%s"
      % (verdict, charges, len(sales), ", ".join(figures), ("; " + "; ".join(bad)) if bad else ""))
