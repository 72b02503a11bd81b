"""hil/vm power cuts, host side: compares the PhonePe replica's ledger (the truth about charges)
with what the guest acknowledged (acks) and what its journal says after the last boot (results).
Prints STEP lines: charged-once (no sale paid twice) and replica-agrees (every acknowledged sale
was paid, every paid sale is approved in the journal)."""
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
paid = {}
for txn_id, t in ledger.get("transactions", {}).items():
    if t.get("kind") != "PAYMENT" or t.get("status") != "SUCCESS":
        continue
    # The orderId is the request id with '-' mapped to '_' (provider/phonepe/wire.rs map_order_id).
    order = (t.get("payload") or {}).get("orderId", txn_id)
    paid.setdefault(order, []).append(txn_id)
twice = {o: ts for o, ts in paid.items() if len(ts) > 1}
dup_calls = sum(1 for n in ledger.get("calls", {}).values() if n > 1)
print(f"STEP power.charged-once: {'PASS' if not twice else 'FAIL'} {len(paid)} sales paid at the replica, "
      f"{len(twice)} paid twice {sorted(twice)[:5]}, {dup_calls} transaction ids sent more than once")
def order(request_id):
    return request_id.replace("-", "_")


results = {order(k): v for k, v in results.items()}
acked = [order(a[1]) for a in acks if a[0] == "ACK"]
unpaid = [i for i in acked if i not in paid]


def status(r):
    """The journal's status of a sale, from `posbridge get-result --json` (`data.status`)."""
    if not isinstance(r, dict):
        return None
    return (r.get("data") or {}).get("status", r.get("status"))


unknown_to_journal = [o for o in paid if status(results.get(o)) != "approved"]
ok = not unpaid and not unknown_to_journal and results
print(f"STEP power.replica-agrees: {'PASS' if ok else 'FAIL'} {len(acked)} acknowledged, {len(unpaid)} of them "
      f"not paid {unpaid[:5]}; {len(paid)} paid, {len(unknown_to_journal)} of them not approved in the journal "
      f"{[(o, status(results.get(o))) for o in unknown_to_journal[:5]]}")
