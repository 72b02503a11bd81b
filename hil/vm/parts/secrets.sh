# No secret and no full card number in any boot's journal (every unit, every field).
# `secrets.sh supervise` runs at the end of boot 1, `secrets.sh power` in the verify boot. The
# guest's journal is volatile (build-image), so the boots before this one are read from their
# copies in the share: /job/journal/1.json (boot 1, written here at its end), cutN.json (each cut
# boot, streamed by parts/power-sales.sh while it ran, up to the SIGKILL); this boot's own is
# written here first. The secrets are every one the rig ever used, as the parts set them
# (/job/secrets: the host's PhonePe salt key, part 3's Lifepay password, deleted from
# /etc/credstore at that part's end, part 4's, which never was in it), and whatever is in
# /etc/credstore now. The figure names them, never shows them. Fails if a cut boot has no journal
# copy with an entry (a check that reads nothing passes).
. /job/parts/lib.sh
journalctl --sync
mkdir -p /job/journal
boot=$(cat /job/boot)
journalctl -b -o json > "/job/journal/$boot.json"
for f in /etc/credstore/*; do [ -f "$f" ] && echo "credstore.$(basename "$f") $(cat "$f")" >> /tmp/secrets.now; done
cat /job/secrets /tmp/secrets.now 2> /dev/null > /tmp/secrets.all
rm -f /tmp/secrets.now
fig="$(python3 - "$boot" "$(cat /job/cuts 2>/dev/null || echo 0)" <<'PY'
import glob, json, os, re, sys
boot, cuts = sys.argv[1], int(sys.argv[2])
secrets = {}
for l in open("/tmp/secrets.all"):
    name, _, value = l.strip().partition(" ")
    if value:
        secrets.setdefault(value, name)
# Which boots: boot 1 always; for the verify boot, each cut boot and this one.
names = ["1"] + ([f"cut{i}" for i in range(1, cuts + 1)] + [boot] if boot != "1" else [])
def luhn(s):
    d = [int(c) for c in s][::-1]
    return (sum(d[0::2]) + sum(sum(divmod(2 * x, 10)) for x in d[1::2])) % 10 == 0
def text(v):  # journald gives non-UTF-8 values as arrays of bytes
    if isinstance(v, list) and all(isinstance(x, int) for x in v):
        return bytes(v).decode("utf-8", "replace")
    return v if isinstance(v, str) else None
entries, hits, pans, bad = {}, {}, 0, []
out = open("/job/secret-hits.txt", "a")
for b in names:
    path = f"/job/journal/{b}.json"
    n = 0
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            for value, name in secrets.items():   # the raw line: every field, any escaping aside
                if value in line:
                    hits[name] = hits.get(name, 0) + 1
                    print(f"boot {b}: {name}", file=out)
            try:
                e = json.loads(line)
            except ValueError:
                continue   # the last line of a cut boot may end at the SIGKILL
            n += 1
            for k, v in e.items():
                v = text(v)
                if v is None:
                    continue
                for value, name in secrets.items():
                    if value in v and value not in line:   # escaped in the raw line
                        hits[name] = hits.get(name, 0) + 1
                        print(f"boot {b}: {name} in {k}", file=out)
                if k.startswith("_") or e.get("_TRANSPORT") == "kernel":
                    continue   # the kernel's memory map, trusted fields: not a card
                # A card number: 13-19 digits standing alone (not inside a hex id such as
                # INVOCATION_ID) that pass the Luhn check.
                for m in re.finditer(r"(?<![0-9A-Za-z])[0-9]{13,19}(?![0-9A-Za-z])", v):
                    if luhn(m.group()):
                        pans += 1
                        print(f"boot {b}: {k} {v[:200]}", file=out)
    entries[b] = n
    if n == 0:
        bad.append(b)
ok = not hits and not pans and not bad and secrets
print(("PASS " if ok else "FAIL ") +
      f"{len(names)} boots ({' '.join(f'{b}:{n}' for b, n in entries.items())} entries), "
      f"{len(secrets)} secrets ({' '.join(sorted(secrets.values()))}): "
      f"{sum(hits.values())} hits {sorted(hits.items())}, {pans} 13-19 digit runs"
      + (f"; no journal copy with an entry for boot(s) {' '.join(bad)}" if bad else ""))
PY
)" || fig="FAIL the check itself failed: $fig"
step "${1:-secrets}.journal-clean" "${fig%% *}" "${fig#* }"
