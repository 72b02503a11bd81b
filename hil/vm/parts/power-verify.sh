# Part 5, the boot after the last cut: the journal opens and passes SQLite's integrity_check,
# reconciliation leaves nothing unknown, and every sale acknowledged before a cut is approved in
# the journal. Writes every sent sale's result to /job/results.json for the host's check.
. /job/parts/lib.sh
wait_for 120 systemctl is-active -q posbridge.service
# hil/vm/run --debug: where the time of a boot after a power cut went.
if [ "$(cat /job/debug 2>/dev/null)" = 1 ]; then
    { systemd-analyze; systemd-analyze blame | head -20; systemd-analyze critical-chain posbridge.service; } \
        > /job/analyze-verify.txt 2>&1
fi
db=/var/lib/posbridge/journal.sqlite
if broken corrupt-journal; then   # control: the header of the journal's second page overwritten
    systemctl stop posbridge.service posbridge.socket
    sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE)' > /dev/null   # the pages are in the WAL until then
    printf '\377%.0s' $(seq 16) | dd of="$db" bs=1 seek=4096 conv=notrunc 2> /dev/null
fi
ic="$(sqlite3 -readonly "$db" 'PRAGMA integrity_check' 2>&1 | head -3 | tr '\n' ' ')"
check power.integrity "integrity_check: $ic; $(systemctl show -P StatusText posbridge.service)" test "$ic" = "ok "
t=$(now)
wait_for 120 bash -c 'systemctl show -P StatusText posbridge.service | grep -q " 0 unknown"'
check power.unknown "$(systemctl show -P StatusText posbridge.service), after $(since "$t") s" \
    bash -c 'systemctl show -P StatusText posbridge.service | grep -q " 0 unknown"'
missing=0; acked=0
echo '{' > /tmp/results.json; first=1
for id in $(awk '$1=="SENT"{print $2}' /job/acks); do
    r="$(posbridge get-result "$id" --json 2>/dev/null | head -1)"
    [ -n "$r" ] || r='null'
    [ $first = 1 ] || echo ',' >> /tmp/results.json; first=0
    printf '"%s": %s\n' "$id" "$r" >> /tmp/results.json
done
echo '}' >> /tmp/results.json
cp /tmp/results.json /job/results.json
for id in $(awk '$1=="ACK"{print $2}' /job/acks); do
    acked=$((acked + 1))
    posbridge get-result "$id" --json 2>/dev/null | grep -q '"status":"approved"' || { missing=$((missing + 1)); echo "acknowledged but not approved in the journal: $id"; }
done
# Boot 1's set-up sale (pc-setup-1) is checked too, but it says nothing about power cuts: the step
# needs at least one sale acknowledged during a cut boot (pc-cutN-K) when there were cuts.
acked_cut=$(grep -c '^ACK pc-cut' /job/acks || true)
cuts=$(cat /job/cuts 2>/dev/null || echo 0)
check power.acknowledged "$acked_cut sales acknowledged during the $cuts cut boots ($acked with boot 1's), $missing missing or not approved in the journal" \
    bash -c "[ $missing = 0 ] && { [ $cuts = 0 ] || [ $acked_cut -gt 0 ]; }"
