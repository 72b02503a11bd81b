# No secret and no full card number anywhere in the journal (every unit, every field).
. /job/parts/lib.sh
journalctl --sync
journalctl -b -o json > /tmp/all.json
entries=$(wc -l < /tmp/all.json)
secret_hits=0
for f in /etc/credstore/*; do [ -f "$f" ] && secret_hits=$((secret_hits + $(grep -cF "$(cat "$f")" /tmp/all.json))); done
pan_hits=$(python3 -c '
import json,re
n=0
out=open("/job/pan-hits.txt","a")
for l in open("/tmp/all.json"):
    e=json.loads(l)
    if e.get("_TRANSPORT")=="kernel": continue  # the kernel'"'"'s memory map, not a card
    for k,v in e.items():
        if not k.startswith("_") and isinstance(v,str):
            # A card number: 13-19 digits standing alone (not inside a hex id such as
            # INVOCATION_ID) that pass the Luhn check.
            for m in re.finditer(r"(?<![0-9A-Za-z])[0-9]{13,19}(?![0-9A-Za-z])",v):
                d=[int(c) for c in m.group()][::-1]
                if (sum(d[0::2])+sum(sum(divmod(2*x,10)) for x in d[1::2])) % 10: continue
                n+=1; print(k, v[:200], file=out)
print(n)')
check "${1:-secrets}.journal-clean" "$entries entries: $secret_hits secret hits ($(ls /etc/credstore 2>/dev/null | tr '\n' ' ')), $pan_hits 13-19 digit runs" \
    bash -c "[ $secret_hits = 0 ] && [ $pan_hits = 0 ]"
