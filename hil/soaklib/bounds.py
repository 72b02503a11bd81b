"""The soak's columns and their bounds (hil/soak): what each monthly row holds, the bound each
column is held to from month 2 on, and why. It only judges rows; it measures nothing."""

# Each column's bound, held from month 2 to the last month: (column, kind, value, why).
# "ref" bounds compare every month with month 2 (month 1 warms up: first journal pages, first
# ledger rows, the allocator's arenas); "abs" bounds are absolute.
BOUNDS = [
    ("rss_kb", "ref", (1.25, 4096),
     "VmRSS at the month's end within 25% + 4 MiB of month 2's: the daemon is then at most a "
     "day old (SIGTERM restart each day), so this catches what grows with the state on disk "
     "(journal, ledgers, paired devices) across the year; allocator noise stays well inside"),
    ("hwm_kb", "ref", (1.25, 4096),
     "VmHWM (peak of the process, which is at most a day old: it resets at each restart) "
     "within 25% + 4 MiB of month 2's: a day's peak must not climb with the year"),
    ("fds", "ref", (1.0, 1),
     "open fds other than TCP connections at an idle moment within one of month 2's: the "
     "socket, journal, ledger, devices' ptys, runtime; anything per POS connection, per device "
     "or per request left open would grow with the sales"),
    ("tcp", "abs", (8,),
     "TCP connections at most 8: the HTTP client's idle pooled connections to the three "
     "replicas (one per lane in flight at once: PhonePe 2, IOT Pay 1, Paysera 1) come and go; "
     "a pool that never drops a connection would grow"),
    ("threads", "ref", (1.0, 4),
     "threads equal to month 2's, give or take 4: tokio's blocking pool keeps an idle thread "
     "10 s after its last use (journal and ledger writes), so the count at a moment varies"),
    ("cpu_ms_per_sale", "ref", (1.5, 0.5),
     "CPU time per operation within 50% + 0.5 ms of month 2's: a shared 2-core machine's "
     "noise; a scan that grows with the journal or ledgers would grow it without bound"),
    ("journal_kb", "abs", (4096,),
     "journal.sqlite under 4 MiB: journal.capacity (500; 100 in --short) final results of "
     "about 1-3 KiB each, and the free pages SQLite reuses; more says eviction fell behind"),
    ("journal_kb", "ref", (1.1, 64),
     "journal.sqlite within 10% + 64 KiB of month 2's: full since month 1, it only reuses "
     "its pages"),
    ("wal_kb", "abs", (4096 + 64,),
     "journal.sqlite-wal under 4 MiB + 64 KiB: SQLite checkpoints at 1000 pages (4 KiB each) "
     "and reuses the file from its start, so it stays near that mark unless a reader pins it"),
    ("log_b_per_sale", "abs", (600,),
     "log bytes per operation at the default (info) level under 600: measured about 460 "
     "(a sale's three lines); 600 fails when one more ~140-byte info line per sale appears"),
    ("log_lines_per_sale", "abs", (33,),
     "log lines per operation under 33: journald's default rate limit is 10,000 lines per 30 s "
     "per service (RateLimitBurst, RateLimitIntervalSec), 333 lines/s; at 10 sales/s a sale "
     "may log 33 lines before journald starts dropping them"),
    ("p50_ms", "ref", (1.5, 150),
     "p50 pay latency (pays that met no fault: none in flight during a kill, an unplug or a "
     "stepped clock, or within 1 s after one) within 50% + 150 ms of month 2's: the median "
     "sits between the sim's ~2 ms pays and the replicas' and reader's ~100-250 ms ones, so "
     "it may flip between them from one month to the next (seen in --short: 1.4-7.3 ms, "
     "106 ms with other weights); a lookup that grows with the journal or a ledger grows past"),
    ("p99_ms", "ref", (2.0, 500),
     "p99 pay latency (the same pays) within twice month 2's + 500 ms: the slowest 1% of a "
     "month is a few sales on a shared 2-core machine (2 of --short's 196), so it is noisy"),
]
# The sim ledger (sim-backend.sqlite) grows by a row per call today (issue 19 item 2 bounds
# it); the soak prints its size and its growth, and holds it only with --hold-sim-ledger.
SIM_BOUND = ("sim_kb", "ref", (1.25, 256),
             "sim ledger within 25% + 256 KiB of month 2's: a bounded ledger (issue 19 item 2) "
             "stays flat once full")

COLUMNS = [("month", "%5d"), ("sales", "%6d"), ("ops", "%6d"), ("rss_kb", "%7d"),
           ("hwm_kb", "%7d"), ("fds", "%4d"), ("tcp", "%3d"), ("threads", "%4d"),
           ("cpu_ms_per_sale", "%7.2f"),
           ("journal_kb", "%7d"), ("wal_kb", "%7d"), ("sim_kb", "%7d"),
           ("log_b_per_sale", "%7.0f"), ("log_lines_per_sale", "%6.2f"), ("p50_ms", "%7.1f"),
           ("p99_ms", "%7.1f"), ("kills", "%3d"), ("unplugs", "%3d"), ("steps", "%3d")]


SHORT_NAMES = {"cpu_ms_per_sale": "cpu_ms", "log_b_per_sale": "log_B", "journal_kb": "jrnl_kb",
               "log_lines_per_sale": "lines", "threads": "thr"}


def header():
    return " ".join("%*s" % (len(f % 0), SHORT_NAMES.get(c, c)) for c, f in COLUMNS)


def fmt(row):
    return " ".join(f % row[c] for c, f in COLUMNS)


def check_bounds(rows, hold_sim):
    """Problems: each column of months 2.. against its bound (ref: month 2's value)."""
    problems = []
    if len(rows) < 3:
        return ["only %d months: the bounds need month 2 and a later one" % len(rows)]
    ref = rows[1]
    bounds = BOUNDS + ([SIM_BOUND] if hold_sim else [])
    for col, kind, val, _ in bounds:
        for row in rows[1:]:
            if kind == "ref":
                limit = ref[col] * val[0] + val[1]
            else:
                limit = val[0]
            if row[col] > limit:
                problems.append("month %d %s = %s over its bound %.2f (%s)" % (
                    row["month"], col, round(row[col], 2), limit,
                    "month 2's %s x %s + %s" % (round(ref[col], 2), val[0], val[1])
                    if kind == "ref" else "absolute"))
    return problems
