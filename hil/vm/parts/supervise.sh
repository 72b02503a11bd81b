# Part 2: systemd supervision of the installed service, for real. Runs in the guest after
# package.sh (the package is installed, the socket is listening).
. /job/parts/lib.sh
mono() { systemctl show -P "$1" posbridge.service; }
mainpid() { systemctl show -P MainPID posbridge.service; }

# READY only after recovery: kill -9 the daemon in the middle of a sale; systemd restarts it;
# the new daemon recovers the interrupted sale before READY (ActiveEnter comes after its log line).
# The line's own READY_MONOTONIC_USEC is compared, not journald's __MONOTONIC_TIMESTAMP: journald
# stamps an entry when it receives it, which can be after PID 1 handled the READY sent later
# (seen once: READY 11 ms "before" the line).
if broken ready-at-exec; then   # control: Type=simple, systemd counts the service up at exec
    mkdir -p /etc/systemd/system/posbridge.service.d
    printf '[Service]\nType=simple\n' > /etc/systemd/system/posbridge.service.d/vm-break.conf
    systemctl daemon-reload
fi
systemctl start posbridge.service
posbridge pay --amount 200 --request-id vm-ready-0001 --param delay_ms=20000 > /tmp/ready.out 2>&1 &
wait_for 10 bash -c 'journalctl -u posbridge.service -b -o cat | grep -q "vm-ready-0001 started"'
old=$(mainpid); kill -9 "$old"
wait_for 20 bash -c "p=\$(systemctl show -P MainPID posbridge.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $old ] && systemctl is-active -q posbridge.service"
line="$(journalctl -u posbridge.service -b -o json --output-fields=MESSAGE,_PID,READY_MONOTONIC_USEC | python3 -c '
import json,sys
for l in sys.stdin:
    e=json.loads(l)
    m=e.get("MESSAGE","")
    if isinstance(m,str) and m.startswith("ready on") and e.get("_PID")=="'"$(mainpid)"'":
        print(e.get("READY_MONOTONIC_USEC", ""), m)')"
ready_mono=$(mono ActiveEnterTimestampMonotonic)
log_mono=${line%% *}
wait "$!" 2>/dev/null
res="$(posbridge get-result vm-ready-0001 --json 2>&1 | head -c 300)"
check supervise.ready-after-recovery "${line#* } | READY $(( (ready_mono - ${log_mono:-0}) / 1000 )) ms after it; $(echo "$res" | grep -o '"state":"[a-z_]*"\|"status":"[a-z_]*"' | head -2 | tr '\n' ' ')" \
    bash -c "[ -n '$log_mono' ] && [ $ready_mono -ge ${log_mono:-0} ] && echo '$line' | grep -q ' 1 interrupted'"

rm -f /etc/systemd/system/posbridge.service.d/vm-break.conf

# Watchdog: a stopped daemon is killed and restarted (test drop-in: WatchdogSec=4s).
mkdir -p /etc/systemd/system/posbridge.service.d
printf '[Service]\nWatchdogSec=4s\n' > /etc/systemd/system/posbridge.service.d/vm-watchdog.conf
broken no-watchdog && printf '[Service]\nWatchdogSec=0\n' > /etc/systemd/system/posbridge.service.d/vm-watchdog.conf
systemctl daemon-reload; systemctl restart posbridge.service
n0=$(systemctl show -P NRestarts posbridge.service); old=$(mainpid); t=$(now)
kill -STOP "$old"
wait_for 30 bash -c "p=\$(systemctl show -P MainPID posbridge.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $old ] && systemctl is-active -q posbridge.service"
took=$(since "$t"); n1=$(systemctl show -P NRestarts posbridge.service)
check supervise.watchdog "kill -STOP -> new MainPID after $took s (WatchdogSec=4s), NRestarts $n0 -> $n1" \
    bash -c "[ $n1 -gt $n0 ] && journalctl -u posbridge.service -b | grep -q 'Watchdog timeout' && posbridge status > /dev/null"
rm /etc/systemd/system/posbridge.service.d/vm-watchdog.conf; systemctl daemon-reload

# systemctl stop drains a running sale: the sale finishes and is answered, then the daemon exits.
if broken no-drain; then   # control: systemd kills the daemon 1 s into the stop
    printf '[Service]\nTimeoutStopSec=1s\n' > /etc/systemd/system/posbridge.service.d/vm-break.conf
    systemctl daemon-reload
fi
systemctl restart posbridge.service
t=$(now)
posbridge pay --amount 300 --request-id vm-drain-0001 --param delay_ms=4000 --json > /tmp/drain.out 2>&1 &
pay=$!
wait_for 10 bash -c 'journalctl -u posbridge.service -b -o cat | grep -q "vm-drain-0001 started"'
systemctl stop posbridge.service; stopped=$(since "$t")
wait $pay; rc=$?
check supervise.drain "stop returned after $stopped s, pay rc=$rc: $(grep -o '"status":"[a-z_]*"' /tmp/drain.out | head -1)" \
    bash -c "[ $rc = 0 ] && grep -q '\"status\":\"approved\"' /tmp/drain.out"
rm -f /etc/systemd/system/posbridge.service.d/vm-break.conf; systemctl daemon-reload

# A crash loop stops at the unit's start limits (StartLimitBurst=5 in StartLimitIntervalSec=60s):
# the service ends failed instead of restarting for ever, and says so.
cp /etc/posbridge/posbridge.toml /tmp/posbridge.toml.good
echo 'this is = not [valid' >> /etc/posbridge/posbridge.toml
n0=$(systemctl show -P NRestarts posbridge.service)
t=$(now)
systemctl start posbridge.service 2> /dev/null
stopped() { [ "$(systemctl show -P ActiveState posbridge.service)" = failed ]; }
wait_for 90 stopped
took=$(since "$t")
n1=$(systemctl show -P NRestarts posbridge.service); sleep 5
n2=$(systemctl show -P NRestarts posbridge.service)
journalctl -u posbridge.service -u posbridge.socket -b -o short-monotonic --since "@${t%.*}" > /job/crash-loop.txt
fig="service $(systemctl show -P ActiveState posbridge.service) (Result=$(systemctl show -P Result posbridge.service)) after $took s, $((n1 - n0)) restarts, still $((n2 - n0)) 5 s later; socket $(systemctl show -P ActiveState posbridge.socket) (Result=$(systemctl show -P Result posbridge.socket)); $(grep -c 'posbridge.toml' /job/crash-loop.txt) log lines name posbridge.toml"
check supervise.crash-loop "$fig" bash -c "[ \$(systemctl show -P ActiveState posbridge.service) = failed ] && [ $n1 = $n2 ] && [ $((n1 - n0)) -le 5 ] && grep -q posbridge.toml /job/crash-loop.txt"
cp /tmp/posbridge.toml.good /etc/posbridge/posbridge.toml
systemctl reset-failed posbridge.service posbridge.socket
systemctl start posbridge.socket

# journald: the structured fields arrive, and one request id finds a sale's whole story.
if broken no-journal-fields; then   # control: the daemon does not know stderr is the journal
    printf '[Service]\nUnsetEnvironment=JOURNAL_STREAM\n' > /etc/systemd/system/posbridge.service.d/vm-break.conf
    systemctl daemon-reload; systemctl restart posbridge.service
fi
posbridge pay --amount 400 --request-id till3-0042 > /dev/null 2>&1
journalctl --sync
story=$(journalctl REQUEST_ID=till3-0042 -o cat | wc -l)
fields="$(journalctl REQUEST_ID=till3-0042 -o json | python3 -c '
import json,sys
keys=set()
for l in sys.stdin: keys |= {k for k in json.loads(l) if k in ("REQUEST_ID","PROVIDER","ACTION","DEVICE")}
print(",".join(sorted(keys)))')"
check supervise.journal-fields "journalctl REQUEST_ID=till3-0042: $story entries, fields $fields" \
    bash -c "[ $story -ge 2 ] && [ '$fields' = ACTION,PROVIDER,REQUEST_ID ]"
if broken no-journal-fields; then
    rm -f /etc/systemd/system/posbridge.service.d/vm-break.conf; systemctl daemon-reload; systemctl restart posbridge.service
fi
journalctl -u posbridge.service -b -o json > /tmp/journal.json
journalctl -u posbridge.service -b -o cat | sed -n '1,400p' > /job/journal-part2.txt
