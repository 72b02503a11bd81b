# Part: `systemctl reload posbridge` on the installed service (issue 19 item 5). Runs in the
# guest after package.sh (and supervise.sh), with the service running on the sim; its steps
# are reload.applied and reload.refused.
# Control knob (`--break reload-restarts`): the part restarts instead of reloading, so
# reload.applied must fail (a new MainPID, the running sale cut off).
. /job/parts/lib.sh
conf=/etc/posbridge/posbridge.toml
cp "$conf" /tmp/posbridge.toml.before-reload
systemctl start posbridge.service
wait_for 20 systemctl is-active -q posbridge.service
pid0=$(systemctl show -P MainPID posbridge.service)
n0=$(systemctl show -P NRestarts posbridge.service)
ino0=$(stat -c %i /run/posbridge/api.sock)

# A sale is running (8 s at the sim) when the new file comes: the sim's currency changes.
posbridge pay --amount 200 --request-id vm-reload-0001 --param delay_ms=8000 --json > /tmp/reload-sale.out 2>&1 &
sale=$!
wait_for 10 bash -c 'journalctl -u posbridge.service -b -o cat | grep -q "vm-reload-0001 started"'
# The installed file may already set the sim's currency: set it, or add it (its owner and mode
# stay: the file is rewritten in place).
in_sim='/^\[/{s=($0=="[providers.sim]")}'
if awk "$in_sim"' s && /^currency *=/{f=1} END{exit !f}' "$conf"; then
    awk "$in_sim"' s && /^currency *=/{$0="currency = \"EUR\""} {print}' "$conf" > /tmp/reload.toml
    cat /tmp/reload.toml > "$conf"
elif grep -q '^\[providers.sim\]' "$conf"; then
    sed -i '/^\[providers.sim\]/a currency = "EUR"' "$conf"
else
    printf '\n[providers.sim]\ncurrency = "EUR"\n' >> "$conf"
fi
posbridge config check --secrets "$conf" > /tmp/reload-check.out 2>&1
t=$(now)
if broken reload-restarts; then systemctl restart posbridge.service; else systemctl reload posbridge.service; fi
# STATUS says "reloaded ..." until the next watchdog tick (15 s); a restart never says it.
wait_for 20 bash -c 'systemctl show -P StatusText posbridge.service | grep -q reloaded' || true
took=$(since "$t")
wait $sale; rc=$?
pid1=$(systemctl show -P MainPID posbridge.service)
n1=$(systemctl show -P NRestarts posbridge.service)
ino1=$(stat -c %i /run/posbridge/api.sock)
eur=$(posbridge status --json | grep -o '"currency":"EUR"' | head -1)
fig="reload done in $took s; MainPID $pid0 -> $pid1, NRestarts $n0 -> $n1, socket inode $ino0 -> $ino1; running sale rc=$rc $(grep -o '"status":"[a-z_]*"' /tmp/reload-sale.out | head -1); sim ${eur:-not EUR}; STATUS: $(systemctl show -P StatusText posbridge.service | head -c 160)"
check reload.applied "$fig" bash -c "[ $pid0 = $pid1 ] && [ $n0 = $n1 ] && [ $ino0 = $ino1 ] && [ $rc = 0 ] && grep -q '\"status\":\"approved\"' /tmp/reload-sale.out && [ -n '$eur' ] && grep -q ': ok' /tmp/reload-check.out && journalctl -u posbridge.service -b -o cat | grep -q 'reloaded /etc/posbridge/posbridge.toml'"

# A bad file: refused, logged with the reason, STATUS says so, the old one stays in force.
echo 'no_such_key = 1' >> "$conf"
posbridge config check "$conf" > /tmp/reload-bad.out 2>&1; check_rc=$?
systemctl reload posbridge.service
wait_for 20 bash -c 'systemctl show -P StatusText posbridge.service | grep -q "reload refused"'
status="$(systemctl show -P StatusText posbridge.service)"
pid2=$(systemctl show -P MainPID posbridge.service)
eur2=$(posbridge status --json | grep -o '"currency":"EUR"' | head -1)
fig="config check rc=$check_rc; MainPID $pid1 -> $pid2, $(systemctl show -P ActiveState posbridge.service); sim ${eur2:-not EUR}; STATUS: $(echo "$status" | head -c 200)"
check reload.refused "$fig" bash -c "[ $check_rc != 0 ] && [ $pid1 = $pid2 ] && systemctl is-active -q posbridge.service && [ -n '$eur2' ] && echo '$status' | grep -q no_such_key && journalctl -u posbridge.service -b -o cat | grep -q 'reload refused.*no_such_key'"

cp /tmp/posbridge.toml.before-reload "$conf"
systemctl reload posbridge.service
