"""The backends' own record, as the soak reads it (hil/soak): every charge, refund and cancel
the PhonePe, IOT Pay and Paysera replicas hold (their state files, one per "day": the soak
starts each replica afresh at the day's end), the emulated reader's results (its --state file,
read at each day's end and before each unplug, since it keeps only its last 500), and the sim
ledger (sim-backend.sqlite, read at each day's end). reconcile() sets them against the POS's
final answers (lanes.py): what each charge names is the rule of the kill loop's rigs
(tests/kill_loop/). It only reads."""

import json
import sqlite3

from soaklib.rig import is_unknown

SIM_KIND = {"pay": "pay", "refund": "refund", "cancel": "cancel"}
READER_KIND = {"sale": "pay", "refund": "refund", "cancel": "cancel"}


class Ledgers:
    def __init__(self):
        self.charges = []  # (backend, request named or None, kind, backend's own id)
        self.reader_seen = set()
        self.sim_seq = 0

    def add_replica(self, name, path):
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            return
        if name == "phonepe":
            for tid, t in (state.get("transactions") or {}).items():
                if t.get("status") != "SUCCESS":
                    continue
                p = t.get("payload") or {}
                if t.get("kind") == "PAYMENT":
                    self.charges.append(("phonepe", p.get("orderId"), "pay", tid))
                else:
                    self.charges.append(("phonepe", p.get("merchantOrderId"), "refund", tid))
        elif name == "iotpay":
            for no, o in (state.get("orders") or {}).items():
                if o.get("status") not in (2, 3):
                    continue
                try:
                    named = json.loads((o.get("request") or {}).get("extra") or "{}")["requestId"]
                except (ValueError, KeyError, TypeError):
                    named = None
                self.charges.append(("iotpay", named, "pay", no))
            for no, refunds in (state.get("refunds") or {}).items():
                for _ in refunds or []:
                    self.charges.append(("iotpay", None, "refund", no))
        elif name == "paysera":
            for tid, t in (state.get("transactions") or {}).items():
                if t.get("status") != "confirmed":
                    continue
                p = (t.get("payments") or [{}])[0]
                d = p.get("description") or ""
                named = d[len("Sale "):] if d.startswith("Sale ") else None
                self.charges.append(("paysera", named, "pay", tid))

    def add_reader(self, path):
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            return
        for r in state.get("results") or []:
            if r.get("outcome") != "approved" or r.get("operation") not in READER_KIND:
                continue
            key = (r.get("request_id"), r.get("operation"))
            if key in self.reader_seen:
                continue
            self.reader_seen.add(key)
            named = ((r.get("details") or {}).get("metadata") or {}).get("soak")
            self.charges.append(("lifepay", named, READER_KIND[r["operation"]],
                                 r.get("request_id")))

    def add_sim(self, path):
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            rows = db.execute(
                "SELECT seq, request_id, action, outcome FROM calls WHERE seq > ? ORDER BY seq",
                (self.sim_seq,)).fetchall()
        finally:
            db.close()
        for seq, rid, action, outcome in rows:
            self.sim_seq = seq
            if outcome == "approved" and action in SIM_KIND:
                self.charges.append(("sim", rid, SIM_KIND[action], "seq %d" % seq))


def reconcile(requests, charges):
    """Counts and problems: every approved answer has exactly one charge at its backend, every
    charge has an approved answer, nothing is left unknown."""
    by_id = {r["id"]: r for r in requests}
    count = {}
    problems = []
    lost = double = unknown = 0
    for backend, named, kind, own in charges:
        r = by_id.get(named)
        if r is None or r["kind"] != kind or r["provider"] != backend:
            lost += 1
            problems.append("lost: a %s %s at %s (%s) matches no request" %
                            (kind, own, backend, named))
            continue
        count[named] = count.get(named, 0) + 1
    outcomes = {}
    for r in requests:
        a = r["final"]
        n = count.get(r["id"], 0)
        word = (a.get("data") or {}).get("status") or a.get("reason") or "?"
        outcomes[word] = outcomes.get(word, 0) + 1
        if is_unknown(a):
            unknown += 1
            problems.append("unknown: %s %s" % (r["id"], a.get("message")))
        if n > 1:
            double += 1
            problems.append("double: %s charged %d times" % (r["id"], n))
        if n >= 1 and a.get("code") != 0 and not is_unknown(a):
            lost += 1
            problems.append("lost: %s charged, final answer %s" % (r["id"], json.dumps(a)))
        if n == 0 and a.get("code") == 0:
            lost += 1
            problems.append("lost: %s answered approved, nothing at the backend" % r["id"])
    return {"lost": lost, "double": double, "unknown": unknown, "outcomes": outcomes,
            "charges": len(charges), "problems": problems}
