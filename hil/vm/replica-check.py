"""hil/vm power cuts, host side: compares the PhonePe replica's ledger (the truth about charges)
with what the guest acknowledged (acks) and what its journal says after the last boot (results).
Prints STEP lines and exits 1 if one fails: charged-once (no sale paid twice, and no transaction
id sent to the replica more than once: a re-sent id is a failure, not a figure) and
replica-agrees (every acknowledged sale was paid, every paid sale is approved in the journal,
and at least one sale was acknowledged during the cut boots: the setup sale of boot 1,
`pc-setup-1`, proves nothing about power cuts). Fixtures: hil/vm/fixtures/run."""
import json
import sys

try:
    ledger = json.load(open(sys.argv[1]))
except FileNotFoundError:  # the replica never saw a request (a control run, a broken config)
    ledger = {}
acks = [l.split() for l in open(sys.argv[2]) if l.strip()]
try:
    results = json.load(open(sys.argv[3]))
except (OSError, ValueError) as e:
    results = {}
    print(f"STEP power.results: FAIL no results from the guest: {e}")
failed = not results
paid = {}
for txn_id, t in ledger.get("transactions", {}).items():
    if t.get("kind") != "PAYMENT" or t.get("status") != "SUCCESS":
        continue
    # The orderId is the request id with '-' mapped to '_' (provider/phonepe/wire.rs map_order_id).
    order = (t.get("payload") or {}).get("orderId", txn_id)
    paid.setdefault(order, []).append(txn_id)
twice = {o: ts for o, ts in paid.items() if len(ts) > 1}
# Money-moving calls (init, backToSource) per transaction id, duplicates included (ledger.rs):
# the daemon must never send one again after a cut (a re-sent pay is how a double charge starts
# at a backend that does not deduplicate), so a re-sent id fails the step.
resent = sorted(i for i, n in ledger.get("calls", {}).items() if n > 1)
ok = not twice and not resent
failed |= not ok
print(f"STEP power.charged-once: {'PASS' if ok else 'FAIL'} {len(paid)} sales paid at the replica, "
      f"{len(twice)} paid twice {sorted(twice)[:5]}, {len(resent)} transaction ids sent more than once "
      f"{[(i, ledger['calls'][i]) for i in resent[:5]]}")


def order(request_id):
    return request_id.replace("-", "_")


results = {order(k): v for k, v in results.items()}
acked = [order(a[1]) for a in acks if a[0] == "ACK"]
# Sales of the cut boots are pc-cutN-K (parts/power-sales.sh); boot 1's set-up sale is not one.
acked_cut = [i for i in acked if i.startswith("pc_cut")]
unpaid = [i for i in acked if i not in paid]


def status(r):
    """The journal's status of a sale, from `posbridge get-result --json` (`data.status`)."""
    if not isinstance(r, dict):
        return None
    return (r.get("data") or {}).get("status", r.get("status"))


unknown_to_journal = [o for o in paid if status(results.get(o)) != "approved"]
ok = not unpaid and not unknown_to_journal and results and acked_cut
failed |= not ok
print(f"STEP power.replica-agrees: {'PASS' if ok else 'FAIL'} {len(acked_cut)} acknowledged during cut boots "
      f"({len(acked)} with boot 1's), {len(unpaid)} of them not paid {unpaid[:5]}; {len(paid)} paid, "
      f"{len(unknown_to_journal)} of them not approved in the journal "
      f"{[(o, status(results.get(o))) for o in unknown_to_journal[:5]]}")
sys.exit(1 if failed else 0)
