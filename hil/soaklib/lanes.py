"""The soak's POS (hil/soak): lanes, each a till sending one provider's operations one after
the other on new connections, as a POS would: its own request_id for each, and when an answer
is unknown or a kill cut the connection, get_result later until the outcome is final. It
records every request and its final answer in the Book; it never reads a backend's ledger
(ledgers.py) and never starts or stops a process (rig.py)."""

import threading
import time

from soaklib.rig import Cut, NoDaemon, is_unknown, rpc

# name: (share of the day's pays, POS lanes, request_id prefix, refunds, cancels). The card
# reader takes one operation at a time and Paysera's spot one pending order: one lane each;
# the reader's 200 ms a sale makes its lane the day's longest, hence its smaller share.
# Cancels only where a cancel of an approved pay is a charge of its own at the backend the
# ledger check reads (sim ledger, the reader's results); PhonePe refunds (a REFUND record);
# no IOT Pay refunds (a refund whose answer a kill cuts stays unknown for an operator by
# design: IOT Pay has no refund query) and none at Paysera (it documents none).
PROVIDERS = {
    "sim": (0.48, 2, "sm", True, True),
    "phonepe": (0.18, 2, "pp", True, False),
    "iotpay": (0.12, 1, "io", False, False),
    "paysera": (0.12, 1, "ps", False, False),
    "lifepay": (0.10, 1, "lp", True, True),
}
# The test amounts that decline (..51 at every backend but Paysera, where ..52 is a rejected
# reservation); ~10% of pays.
DECLINE_TAIL = {"paysera": 52}
REFUND_PERCENT = 4
CANCEL_PERCENT = 2
# How long a POS asks get_result for an unknown outcome before leaving it for the end.
SETTLE_S = 120


class Book:
    """Every request the POS sent and its final answer; the pay count events key on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.pays = 0
        self.month_latency = []  # ms of pays answered final at once, this month
        self.abort = None
        # Fault windows (a kill, an unplug, a stepped clock, each until a moment after it is
        # over): a pay that overlaps one is not counted in the latency percentiles.
        self.fault_epoch = 0
        self.faults_open = 0
        self.fault_until = 0.0

    def fault_begin(self):
        with self.lock:
            self.fault_epoch += 1
            self.faults_open += 1

    def fault_end(self, tail_s):
        with self.lock:
            self.fault_epoch += 1
            self.faults_open -= 1
            self.fault_until = max(self.fault_until, time.monotonic() + tail_s)

    def calm_since(self):
        """A token for now, or None while a fault window is open."""
        with self.lock:
            if self.faults_open or time.monotonic() < self.fault_until:
                return None
            return self.fault_epoch

    def add(self, rec):
        with self.lock:
            self.requests.append(rec)
            if rec["kind"] == "pay":
                self.pays += 1
                if rec["latency_ms"] is not None:
                    self.month_latency.append(rec["latency_ms"])

    def take_latency(self):
        with self.lock:
            out, self.month_latency = self.month_latency, []
        return out

    def unknown(self):
        with self.lock:
            return [r for r in self.requests if is_unknown(r["final"])]


def get_final(sock, rid, limit_s=SETTLE_S):
    """get_result until the outcome is final (or limit_s passes: the last answer)."""
    end = time.monotonic() + limit_s
    a = None
    pause = 0.2
    while True:
        try:
            a = rpc(sock, {"action": "get_result", "request_id": rid})
            if not is_unknown(a):
                return a
        except (NoDaemon, Cut):
            pass
        if time.monotonic() > end:
            return a or {"error_type": "unknown_result_error", "message": "no answer"}
        # A POS asks again soon, then less often (each get_result of an unknown card-reader
        # sale asks the reader again and logs two lines).
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)


class Lane(threading.Thread):
    def __init__(self, sock, book, provider, index, rng):
        super().__init__(daemon=True)
        self.sock, self.book, self.provider, self.index, self.rng = sock, book, provider, index, rng
        _, _, self.prefix, self.refunds, self.cancels = PROVIDERS[provider]
        self.reversible = []  # approved pays' data, each reversed at most once (newest 50)
        self.quota = 0
        self.day = 0
        self.n = 0
        self.go = threading.Event()
        self.done = threading.Event()
        self.done.set()

    def start_day(self, day, quota):
        self.day, self.quota = day, quota
        # The soak starts each replica afresh at the day's end (its state file is the day's
        # ledger), so a refund or cancel reverses a pay of the same day.
        self.reversible = []
        self.done.clear()
        self.go.set()

    def run(self):
        while True:
            self.go.wait()
            self.go.clear()
            try:
                self.one_day()
            except Exception as e:  # a broken lane stops the soak, loudly
                self.book.abort = "lane %s%d: %r" % (self.provider, self.index, e)
            self.done.set()

    def amount(self):
        tail = DECLINE_TAIL.get(self.provider, 51) if self.rng.random() < 0.10 else 10
        return self.rng.randint(1, 80) * 100 + tail

    def one_day(self):
        pays = 0
        while pays < self.quota and not self.book.abort:
            self.n += 1
            rid = "%s%d_d%03d_%06d" % (self.prefix, self.index, self.day, self.n)
            roll = self.rng.randrange(100)
            primary = None
            if self.reversible and self.refunds and roll < REFUND_PERCENT:
                kind = "refund"
            elif self.reversible and self.cancels and roll < REFUND_PERCENT + CANCEL_PERCENT:
                kind = "cancel"
            else:
                kind = "pay"
            req = {"action": kind, "request_id": rid, "provider": self.provider,
                   "metadata": {"soak": rid}}
            if kind == "pay":
                pays += 1
                req["amount"] = self.amount()
                if self.provider == "phonepe":
                    req["params"] = {"handover_seconds": 2}
            else:
                primary = self.reversible.pop(self.rng.randrange(len(self.reversible)))
                req["amount"] = primary["amount"]
                req["primary_transaction"] = primary
            self.send(kind, req)

    def send(self, kind, req):
        rid = req["request_id"]
        t0 = t1 = time.monotonic()
        calm0 = self.book.calm_since()
        direct, cut = None, False
        while True:
            try:
                direct = rpc(self.sock, req)
                break
            except NoDaemon:  # not sent: the daemon is restarting
                if time.monotonic() - t0 > SETTLE_S:
                    raise
                time.sleep(0.1)
                t1 = time.monotonic()
                calm0 = self.book.calm_since()
            except Cut:
                cut = True
                break
        latency = None
        final = direct
        calm = calm0 is not None and self.book.calm_since() == calm0
        if direct is not None and not is_unknown(direct) and calm:
            # From the send that reached the daemon: a wait for a restart is not its latency.
            latency = (time.monotonic() - t1) * 1000
        else:
            final = get_final(self.sock, rid)
        self.book.add({"id": rid, "kind": kind, "provider": self.provider,
                       "amount": req["amount"], "day": self.day, "cut": cut,
                       "direct": direct, "final": final, "latency_ms": latency})
        if kind == "pay" and final.get("code") == 0:
            self.reversible.append(final["data"])
            del self.reversible[:-50]
        elif final.get("code") not in (0, None) and final.get("reason") not in (
                "declined", "not_found"):
            # The reader away (unplugged) or a backend refusing: a POS waits a moment.
            time.sleep(0.2)
