# Part "metrics" (issue 10, Also): the installed service with its Prometheus endpoint turned on
# in the config, as an operator does it; one sale must move the sales counter a scraper reads,
# under the real systemd watchdog. Runs in the guest after part 1 (hil/vm/run); the endpoint
# stays on for the boots after (it must not disturb them). The guest has python3, not curl.
. /job/parts/lib.sh
t0=$(now)
ADDR=127.0.0.1:9464
# The endpoint refuses a LAN address: the page holds the shop's sales figures.
printf '[metrics]\nlisten = "0.0.0.0:9464"\n' > /tmp/lan.toml
out="$(posbridge config check /tmp/lan.toml 2>&1)"; rc=$?
echo "$out" > /tmp/lan.out
check metrics.lan-refused "config check of listen = 0.0.0.0:9464: rc=$rc $(echo "$out" | grep -o 'metrics.listen: "[^"]*" is not a loopback address')" \
    bash -c "[ $rc = 4 ] && grep -q 'metrics.listen' /tmp/lan.out && grep -q 'not a loopback address' /tmp/lan.out"

cat >> /etc/posbridge/posbridge.toml <<CONF

# hil/vm part metrics: the Prometheus endpoint on loopback.
[metrics]
listen = "$ADDR"
CONF
posbridge config check /etc/posbridge/posbridge.toml > /tmp/cfg.out 2>&1 || { step metrics.scrape FAIL "config: $(tail -2 /tmp/cfg.out | tr '\n' ' ')"; exit 0; }
systemctl restart posbridge.service

# `scrape FILE`: the page into FILE and its Content-Type on stdout; non-zero if no answer.
scrape() {
    python3 - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5) as r:
    open(sys.argv[1], "w").write(r.read().decode())
    print(r.headers.get("Content-Type"))
PY
}
# `value FILE SERIES`: the sample's value (0 if absent).
value() { awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$1"; }
SALES='posbridge_operations_total{provider="sim",action="pay",outcome="approved"}'
t=$(now)
if ! wait_for 20 scrape /tmp/m0.txt; then
    step metrics.scrape FAIL "no answer at http://$ADDR/metrics 20 s after the restart: $(journalctl -u posbridge -b -n 3 -o cat | tr '\n' ' ')"
    exit 0
fi
up_s=$(since "$t")
before=$(value /tmp/m0.txt "$SALES")
out="$(posbridge pay --amount 100 --request-id vm-metrics-0001 --provider sim 2>&1)"; rc=$?
ctype="$(scrape /tmp/m1.txt 2>&1)"
after=$(value /tmp/m1.txt "$SALES")
wd=$(value /tmp/m1.txt posbridge_watchdog_enabled)
withheld=$(value /tmp/m1.txt posbridge_watchdog_withheld)
commits=$(value /tmp/m1.txt posbridge_journal_commit_duration_seconds_count)
check metrics.scrape "sim approved $before -> $after after one sale (pay rc=$rc), $commits commits timed, watchdog enabled=$wd withheld=$withheld, '$ctype', endpoint up $up_s s after restart, part $(since "$t0") s" \
    bash -c "[ $rc = 0 ] && [ \"$after\" = \"$((before + 1))\" ] && [ \"$wd\" = 1 ] && [ \"$withheld\" = 0 ] && [[ '$ctype' == 'text/plain; version=0.0.4'* ]]"
