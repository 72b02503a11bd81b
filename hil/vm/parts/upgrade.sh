# Part "upgrade" (issue 19 item 4): the previous release (hil/vm/previous, built by the host)
# installed with apt, sales, then `apt install` of this tree's .deb while a sale waits for its
# customer; a newer journal refused under systemd; a real downgrade to the previous release and
# back; a purge and a reinstall. Runs in boot 1 BEFORE part 1 and ends with nothing installed
# and no journal, so part 1 still installs on a clean machine. /job/previous.deb, /job/posbridge.deb.
# Control runs (hil/vm/run --break KNOB; hil/vm/README.md, "Seen failing"): upgrade-restarts-socket,
# upgrade-no-restart (this .deb repacked with another postinst), upgrade-no-drain (systemd kills
# the old daemon 1 s into its stop), upgrade-lose-sale (a row deleted at the upgrade),
# upgrade-newer-accepted (the "newer" journal stamped with the current version),
# downgrade-lose (an answer rewritten at the downgrade), purge-removes-journal; and the
# experiment downgrade-prerm-refuses (below).
. /job/parts/lib.sh
t0=$(now)
PREV=/job/previous.deb NEW=/job/posbridge.deb DB=/var/lib/posbridge/journal.sqlite
apt_in() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "$@"; }
ask() { python3 /job/parts/ask.py "$@"; }
version() { posbridge status --json 2>/dev/null | grep -o '"version":"[^"]*"' | head -1 | cut -d'"' -f4; }
uv() { python3 -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True); print(c.execute("PRAGMA user_version").fetchone()[0])' "$DB" 2>&1; }
# What the journal holds, as the POS reads it: get_result of every id, raw answer lines, under
# both names (v1 and LIFE POS: each answers in its own shape from the one stored answer).
IDS="up-old-1 up-old-2 up-old-3 up-old-4"
results() { ask get_result $IDS; ask ru.lifepay.checkout.payment_terminal.transaction.get_result $IDS; }
same_as() { results > /tmp/up-now.txt; diff "$1" /tmp/up-now.txt > /tmp/up-diff.txt; }

# broken upgrade-restarts-socket / upgrade-no-restart: this tree's .deb repacked with the
# postinst of a package that also restarts the socket (cargo-deb's default before the fix) or
# restarts nothing (restart-after-upgrade off and no restart of our own).
if broken upgrade-restarts-socket || broken upgrade-no-restart; then
    rm -rf /tmp/repack; dpkg-deb -R "$NEW" /tmp/repack
    if broken upgrade-restarts-socket; then
        sed -i 's/try-restart posbridge.service/restart posbridge.service posbridge.socket/' /tmp/repack/DEBIAN/postinst
    else
        sed -i 's/try-restart posbridge.service/try-restart posbridge-none.service/' /tmp/repack/DEBIAN/postinst
    fi
    dpkg-deb -Zgzip -z1 -b /tmp/repack /tmp/new-broken.deb > /dev/null; NEW=/tmp/new-broken.deb
fi

# 1. The previous release, and sales through it (approved, declined, refunded, and one whose
# answer timed out at the backend: unknown, then reconciled).
t=$(now)
apt_in "$PREV" > /tmp/up-apt0.log 2>&1; rc=$?
old_v="$(version)"
posbridge pay --amount 1000 --request-id up-old-1 > /dev/null 2>&1
posbridge pay --amount 1051 --request-id up-old-2 > /dev/null 2>&1
posbridge refund --amount 1000 --request-id up-old-3 --primary up-old-1 > /dev/null 2>&1
posbridge pay --amount 1091 --request-id up-old-4 > /dev/null 2>&1
wait_for 60 bash -c 'python3 /job/parts/ask.py get_result up-old-4 | grep -q "\"status\":\"approved\""'
results > /tmp/up-before.txt
n_fin=$(head -4 /tmp/up-before.txt | grep -c '"status":"\(approved\|refunded\)"\|"reason":"declined"')
check upgrade.previous "apt install of $(dpkg-query -W -f '${Version}' posbridge 2>&1) rc=$rc in $(since "$t") s, status names ${old_v:-nothing}, $n_fin of 4 operations final" \
    bash -c "[ $rc = 0 ] && [ '$old_v' != '' ] && [ $n_fin = 4 ]"

# 2. The upgrade, mid-sale: apt install of the new .deb; once dpkg has unpacked it (the old
# daemon still serves: nothing is stopped before the unpack), a sale that waits 25 s for its
# customer, so that it is running when the postinst restarts the service and ends within the
# 30 s the old daemon drains for, however slow the unpack (a sale started before apt, 25 s,
# had ended before a 49 s apt install reached its postinst on a loaded host; one of 15 s sent
# at the unpack had ended before the postinst's restart in a whole run, with bumble starting
# beside it). During the restart window (the old daemon draining) one more sale is sent.
sock0="$(stat -c %i /run/posbridge/api.sock) $(systemctl show -P InvocationID posbridge.socket)"
pid0=$(systemctl show -P MainPID posbridge.service)
if broken upgrade-no-drain; then   # control: systemd kills the old daemon 1 s into its stop
    mkdir -p /etc/systemd/system/posbridge.service.d
    printf '[Service]\nTimeoutStopSec=1s\n' > /etc/systemd/system/posbridge.service.d/vm-break.conf
    systemctl daemon-reload
fi
t=$(now)
apt_in "$NEW" > /tmp/up-apt1.log 2>&1 &
apid=$!
unpacked() { case "$(dpkg-query -W -f '${db:Status-Status}' posbridge 2>/dev/null)" in unpacked|half-configured) true ;; *) ! kill -0 $apid ;; esac; }
wait_for 300 unpacked
unpacked_at=$(since "$t")
posbridge pay --amount 700 --request-id up-wait-1 --param delay_ms=25000 --json > /tmp/up-wait.out 2>&1 &
wpid=$!
# The restart window: systemd is stopping the old daemon (it drains the waiting sale).
wait_for 120 bash -c '[ "$(systemctl show -P ActiveState posbridge.service)" = deactivating ] || ! kill -0 '$apid
w_state="$(systemctl show -P ActiveState posbridge.service) $(kill -0 $wpid 2>/dev/null && echo sale-waiting || echo sale-done)"
stop_at=$(since "$t")
posbridge pay --amount 800 --request-id up-window-1 --json > /tmp/up-window.out 2>&1 &
npid=$!
wait $apid; arc=$?; took=$(since "$t")
wait $wpid; wrc=$?
wait $npid; nrc=$?
rm -rf /etc/systemd/system/posbridge.service.d; systemctl daemon-reload
sock1="$(stat -c %i /run/posbridge/api.sock 2>&1) $(systemctl show -P InvocationID posbridge.socket)"
pid1=$(systemctl show -P MainPID posbridge.service)
check upgrade.socket-kept "apt rc=$arc in $took s; socket inode+invocation before: $sock0, after: $sock1; $(systemctl is-active posbridge.socket)" \
    bash -c "[ $arc = 0 ] && [ '$sock0' = '$sock1' ] && systemctl is-active -q posbridge.socket"
# The waiting sale: answered by the old daemon before it stopped (approved), or unknown and then
# settled by the new one; never a dropped connection.
wst="$(grep -o '"status":"[a-z_]*"' /tmp/up-wait.out | head -1)"
settled() { ask get_result up-wait-1 | grep -q '"status":"approved"'; }
wait_for 60 settled; s=$?
# Taken by the old daemon (not queued for the new one): its start is logged by the old pid.
by_old=$(journalctl -b _PID="$pid0" -o cat | grep -c 'up-wait-1 started')
check upgrade.mid-sale "sale sent $unpacked_at s into apt (unpacked), stop seen at $stop_at s; started by the old daemon: $by_old; stop began with: $w_state; the waiting sale's client rc=$wrc $wst; get_result approved: $([ $s = 0 ] && echo yes || echo no); daemon pid $pid0 -> $pid1" \
    bash -c "[ $by_old -ge 1 ] && [ '$w_state' = 'deactivating sale-waiting' ] && { [ $wrc = 0 ] || [ $wrc = 3 ]; } && [ -n '$wst' ] && [ $s = 0 ] && [ '$pid0' != '$pid1' ]"
check upgrade.restart-window "a sale sent with the service ${w_state% *}: rc=$nrc $(grep -o '"status":"[a-z_]*"' /tmp/up-window.out | head -1) $(head -c 120 /tmp/up-window.out | grep -v '^{')" \
    bash -c "[ '${w_state% *}' = deactivating ] && [ $nrc = 0 ] && grep -q '\"status\":\"approved\"' /tmp/up-window.out"
new_v="$(version)"
if broken upgrade-lose-sale; then   # control: an upgrade that loses a sale from the journal
    systemctl stop posbridge.service
    python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM operations WHERE request_id=?", ("up-old-2",)); c.commit()' "$DB"
fi
same_as /tmp/up-before.txt; d=$?
IDS="$IDS up-wait-1 up-window-1"
results > /tmp/up-after.txt   # the reference from here on (with the two sales of the upgrade)
check upgrade.results-kept "get_result (v1 and LIFE POS) of the 4 operations before the upgrade byte for byte: $([ $d = 0 ] && echo same || echo "differ: $(grep '^[<>]' /tmp/up-diff.txt | head -2 | cut -c1-100 | tr '\n' ' ')")" test $d = 0
pkg_v="$(dpkg-query -W -f '${Version}' posbridge)"; uvn="$(uv)"
check upgrade.version "posbridge status: $old_v -> $new_v; package $pkg_v; journal user_version $uvn" \
    bash -c "[ '$new_v' != '$old_v' ] && [ '$new_v' = '${pkg_v%-*}' ] && [ '$uvn' -ge 1 ]"

# 3. A journal from a newer posbridge, under systemd: refused, unit failed and saying why, no
# endless restarts, not a byte changed. Then put back.
systemctl stop posbridge.service
uv0="$(uv)"
if broken upgrade-newer-accepted; then bump=$uv0; else bump=$((uv0 + 7)); fi   # control: not newer
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version=%d" % int(sys.argv[2])); c.commit()' "$DB" "$bump"
# What the journal holds on disk: the database file (bytes and mtime) and the WAL's frames, if
# any. SQLite's read-only open of a WAL journal creates an empty -wal and the -shm index (a
# cache it rebuilds) when they are missing: those are not the journal's data.
jsum() { (cd /var/lib/posbridge && stat -c '%n %s %Y' journal.sqlite && sha256sum journal.sqlite \
    && if [ -s journal.sqlite-wal ]; then sha256sum journal.sqlite-wal; else echo "wal: no frames"; fi) 2>&1; }
jsum > /tmp/up-sum0.txt
n0=$(systemctl show -P NRestarts posbridge.service)
t=$(now)
systemctl start posbridge.service 2> /dev/null
posbridge status > /dev/null 2>&1   # a POS asking meanwhile, through the socket
failed() { [ "$(systemctl show -P ActiveState posbridge.service)" = failed ]; }
wait_for 90 failed; f=$?; ftook=$(since "$t")
sleep 5   # would it start again by itself, or through the socket?
posbridge status > /dev/null 2>&1
sleep 3
jsum > /tmp/up-sum1.txt
extra="$(cd /var/lib/posbridge && ls journal.sqlite-* 2>/dev/null | tr '\n' ' ')"
n1=$(systemctl show -P NRestarts posbridge.service)
refusals=$(journalctl -u posbridge.service -b -o cat | grep -c 'was written by a newer posbridge')
systemctl status posbridge.service --no-pager -l > /tmp/up-status.txt 2>&1
# systemctl status shows the last 10 lines: systemd's own about the start limit, after the refusal.
in_status=$(grep -c 'newer posbridge' /tmp/up-status.txt)
said="$(journalctl -u posbridge.service -b -o cat | grep -m1 'newer posbridge' | cut -c1-220)"
journalctl -u posbridge.service -b -o cat | grep 'newer posbridge' | sort | uniq -c > /tmp/up-refusals.txt
sockst="$(systemctl show -P ActiveState posbridge.socket)/$(systemctl show -P Result posbridge.socket)"
check upgrade.newer-refused "user_version $uv0 -> $bump: service $(systemctl show -P ActiveState posbridge.service)/$(systemctl show -P Result posbridge.service) after $ftook s, restarts $n0 -> $n1, socket $sockst; journal.sqlite and WAL frames $(cmp -s /tmp/up-sum0.txt /tmp/up-sum1.txt && echo unchanged || echo CHANGED) (files beside it after: ${extra:-none}); in systemctl status: $in_status lines; log: $said" \
    bash -c "[ $f = 0 ] && cmp /tmp/up-sum0.txt /tmp/up-sum1.txt && [ $refusals -ge 1 ] && [ \$(( $n1 - $n0 )) -le 5 ] && [ '$sockst' = failed/service-start-limit-hit ] && grep -q 'journal schema $bump; this binary knows up to $uv0' /tmp/up-refusals.txt"
systemctl stop posbridge.socket posbridge.service
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version=%d" % int(sys.argv[2])); c.commit()' "$DB" "$uv0"
chown posbridge:posbridge /var/lib/posbridge/journal.sqlite* 2>/dev/null
systemctl reset-failed posbridge.service posbridge.socket
systemctl start posbridge.socket

# 4. A real downgrade: the previous release's .deb over this one, and back.
# downgrade-prerm-refuses (an experiment, not a step's control): this .deb reinstalled with a
# prerm that fails on `upgrade` to an older version, to see whether dpkg then stops the downgrade.
if broken downgrade-prerm-refuses; then
    rm -rf /tmp/repack; dpkg-deb -R "$NEW" /tmp/repack
    sed -i '2i case "$1" in upgrade) if dpkg --compare-versions "$2" lt 0.2.0; then echo "prerm: refusing the downgrade to $2" >&2; exit 1; fi ;; esac' /tmp/repack/DEBIAN/prerm
    dpkg-deb -Zgzip -z1 -b /tmp/repack /tmp/new-prerm.deb > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall /tmp/new-prerm.deb > /tmp/up-apt-prerm.log 2>&1
fi
t=$(now)
apt_in "$PREV" > /tmp/up-apt2.log 2>&1; drc=$?; dtook=$(since "$t")
broken downgrade-prerm-refuses && echo "downgrade with a refusing prerm: rc=$drc, now $(dpkg-query -W -f '${Version}' posbridge): $(grep -i 'prerm\|refusing\|error' /tmp/up-apt2.log | tr '\n' ' ' | cut -c1-400)"
down_v="$(version)"
broken downgrade-lose && python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("UPDATE operations SET response=replace(response,\"approved\",\"declined\") WHERE request_id=?", ("up-window-1",)); c.commit()' "$DB"
same_as /tmp/up-after.txt; dd=$?
cp /tmp/up-diff.txt /tmp/up-diff-down.txt
posbridge pay --amount 900 --request-id up-down-1 > /dev/null 2>&1; prc=$?
apt_in "$NEW" > /tmp/up-apt3.log 2>&1; urc=$?
back_v="$(version)"
same_as /tmp/up-after.txt; du=$?
ask get_result up-down-1 > /tmp/up-down1.txt
IDS="$IDS up-down-1"; results > /tmp/up-ref.txt   # the reference for the purge below
check upgrade.downgrade "apt install of the previous .deb over this one: rc=$drc in $dtook s, status names ${down_v:-nothing}, the 6 earlier operations' answers $([ $dd = 0 ] && echo same || echo "DIFFER: $(grep '^[<>]' /tmp/up-diff-down.txt | head -2 | cut -c1-90 | tr '\n' ' ')"), a sale there rc=$prc; back up: rc=$urc, ${back_v:-nothing}, answers $([ $du = 0 ] && echo same || echo DIFFER), its sale $(grep -o '"status":"[a-z_]*"' /tmp/up-down1.txt); user_version $(uv)" \
    bash -c "[ $drc = 0 ] && [ '$down_v' = '$old_v' ] && [ $dd = 0 ] && [ $prc = 0 ] && [ $urc = 0 ] && [ '$back_v' = '$new_v' ] && [ $du = 0 ] && grep -q '\"status\":\"approved\"' /tmp/up-down1.txt"

# 5. Purge and reinstall: the journal is kept (packaging/debian/postrm: the record of the
# shop's recent sales, and the only way to settle an unknown outcome), and the reinstalled
# package answers from it.
t=$(now)
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q posbridge > /tmp/up-purge.log 2>&1; prc=$?
broken purge-removes-journal && rm -rf /var/lib/posbridge   # control: a purge that deletes the journal
kept="$(ls /var/lib/posbridge 2>/dev/null | tr '\n' ' ')"
gone="$(ls -d /etc/posbridge /usr/lib/systemd/system/posbridge.* /usr/bin/posbridge 2>/dev/null | tr '\n' ' ')"
apt_in "$NEW" > /tmp/up-apt4.log 2>&1; rrc=$?
same_as /tmp/up-ref.txt; dr=$?
check upgrade.purge-reinstall "purge rc=$prc: kept in /var/lib/posbridge: ${kept:-nothing}; left elsewhere: ${gone:-nothing}; reinstall rc=$rrc, the 7 operations' answers $([ $dr = 0 ] && echo same || echo "DIFFER: $(grep '^[<>]' /tmp/up-diff.txt | head -1 | cut -c1-90)"); $(since "$t") s" \
    bash -c "[ $prc = 0 ] && [ -z '$gone' ] && [[ ' $kept' == *' journal.sqlite '* ]] && [ $rrc = 0 ] && [ $dr = 0 ]"

# Leave a clean machine for part 1: the package purged, its journal deleted by hand.
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q posbridge > /dev/null 2>&1
rm -rf /var/lib/posbridge /etc/posbridge
mkdir -p /job/upgrade; cp /tmp/up-*.txt /tmp/up-*.log /tmp/up-*.out /job/upgrade/ 2>/dev/null
echo "upgrade part: $(since "$t0") s"
