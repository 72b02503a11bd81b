# Part 3: udev and USB serial (boot 1). qemu's usb-serial (FTDI 0403:6001, serial PBR1A2B3C) on
# xHCI is the guest's /dev/ttyUSB0; on the host it is bridged to `posbridge emulate card-reader`
# (hil/vm/usb-host.py), whose state file /job/usb/reader.state.json is the reader's own record of
# what it charged. The guest asks the host to unplug/re-plug the device through QMP by writing
# /job/usb/unplug or /job/usb/plug and waiting for /job/usb/unplugged or /job/usb/plugged.
. /job/parts/lib.sh
t_part=$(now)
SERIAL=PBR1A2B3C
NODE=/dev/posbridge/card-reader-$SERIAL
ID=card-reader-$SERIAL
U=/job/usb
mainpid() { systemctl show -P MainPID posbridge.service; }
jget() { python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: j=j.get(k) if isinstance(j,dict) else None
print("" if j is None else j)' "$@" 2>/dev/null; }
# The reader's id for a sale (its backend id, from the daemon's journal; the reader never sees
# the POS's request_id), and how many approved results the reader's own state holds for it.
backend_id() { sqlite3 -readonly /var/lib/posbridge/journal.sqlite "SELECT json_extract(operation,'\$.backend_id') FROM operations WHERE request_id='$1'"; }
reader_approved() { python3 -c 'import json,sys
s=json.load(open(sys.argv[1]))
print(len([r for r in s.get("results",[]) if r.get("request_id")==sys.argv[2] and r.get("outcome")=="approved"]))' "$U/reader.state.json" "$1" 2>/dev/null || echo "?"; }
# dev_state: the paired reader as `posbridge devices` shows it (connected, disconnected, missing).
dev_state() { posbridge devices --json 2>/dev/null | python3 -c 'import json,sys
ds=[d for d in (json.load(sys.stdin).get("data") or {}).get("devices") or [] if d.get("id")==sys.argv[1]]
print(("connected" if ds[0].get("connected") else "disconnected") if ds else "missing")' "$ID" 2>/dev/null || echo "?"; }
# host_hand ASK DONE: asks the host for a QMP action and waits for its answer (bounded).
host_hand() {
    # Made under another name and renamed: the host may remove it as soon as it appears, and
    # over 9p a plain `: > file` (create, then truncate) then fails with ENOENT.
    rm -f "$U/$2"; : > "$U/.$1" && mv "$U/.$1" "$U/$1"
    wait_for 20 test -f "$U/$2" || { echo "no answer from the host to $1"; return 1; }
    grep -q '^ok' "$U/$2"
}

wait_for 30 test -e /dev/ttyUSB0
usb="$(lsusb 2>/dev/null | grep -i 0403:6001 | head -1)"
echo "usb: ttyUSB0 $( [ -e /dev/ttyUSB0 ] && echo present || echo missing); $usb"

# The shipped 70-posbridge.rules matches our models only; qemu's usb-serial cannot carry their
# strings (manufacturer "QEMU", product "QEMU USB SERIAL"), so install the technician's local
# rule exactly as docs/operations.md ("Adding a device model") says. /job/usb/local.rules
# overrides it (the runs that show the steps failing).
# Step 2 of the doc: read the identity; the first idVendor/idProduct up the chain is the USB
# device, and 0403:6001 is a stock bridge chip, so its manufacturer and product strings too.
udevadm info --query=property --name=/dev/ttyUSB0 | grep -E 'ID_VENDOR_ID|ID_MODEL_ID|ID_SERIAL_SHORT' > "$U/identity.txt"
udevadm info --attribute-walk --name=/dev/ttyUSB0 | grep -E 'idVendor|idProduct|serial|manufacturer|product' | head > "$U/attribute-walk.txt"
attr() { grep -m1 -o "ATTRS{$1}==\"[^\"]*\"" "$U/attribute-walk.txt"; }
rule="SUBSYSTEMS==\"usb\", $(attr idVendor), $(attr idProduct), $(attr manufacturer), $(attr product), ENV{POSBRIDGE_ROLE}=\"card-reader\""
[ -f "$U/local.rules" ] && rule="$(cat "$U/local.rules")"
echo "$rule" > /etc/udev/rules.d/69-posbridge-local.rules
echo "usb: 69-posbridge-local.rules: $rule"
t=$(now)
udevadm control --reload && udevadm trigger --action=add --subsystem-match=usb --subsystem-match=tty
udevadm settle -t 20
wait_for 10 test -e "$NODE"
named=$(since "$t")
check usb.name "$NODE -> $(readlink "$NODE" 2>/dev/null || echo missing), ${named} s after reload+trigger" \
    bash -c "[ \"\$(readlink -f $NODE)\" = /dev/ttyUSB0 ]"
acc="$(stat -L -c '%G %a' "$NODE" 2>&1)"
check usb.access "$acc" test "$acc" = "posbridge 660"
mm="$( { udevadm info --query=property --name=/dev/ttyUSB0 | grep '^ID_MM_DEVICE_IGNORE='; } 2>&1)"
check usb.modemmanager "ttyUSB0: ${mm:-no ID_MM_DEVICE_IGNORE}" test "$mm" = ID_MM_DEVICE_IGNORE=1
unit="$(systemd-escape -p --suffix=device "$NODE")"
tags="$(udevadm info --query=property --name=/dev/ttyUSB0 | grep '^TAGS=' )"
check usb.systemd-tag "$tags; $unit $(systemctl is-active "$unit")" \
    bash -c "echo '$tags' | grep -q :systemd: && systemctl is-active -q '$unit'"

# The Lifepay route on the paired reader: login in the config, password as the `password`
# systemd credential (LoadCredential=password in the unit).
# The config and the credential are put back at the end: later parts (BLE) configure their own.
cp /etc/posbridge/posbridge.toml /run/usb-posbridge.toml.before
install -d -m 0700 /etc/credstore
# The password hil/vm/run made for the emulated reader's --account: the reader refuses others.
install -m 0600 "$U/lifepay.password" /etc/credstore/password
# Every secret the rig uses is listed for parts/secrets.sh (this one is deleted at the part's end).
echo "usb.lifepay-password $(cat /etc/credstore/password)" >> /job/secrets
cat >> /etc/posbridge/posbridge.toml <<'CONF'

# hil/vm part 3: the card reader paired over USB serial.
[providers.lifepay]
login = "vm-shop"
CONF
systemctl restart posbridge.service
t=$(now)
out="$(posbridge pair "serial:$NODE" --role card-reader --json 2>&1)"; rc=$?
check usb.pair "pair serial:$NODE: rc=$rc in $(since "$t") s: $(echo "$out" | grep -o '"id":"[^"]*"\|"connected":[a-z]*\|"model":"[^"]*"' | tr '\n' ' ')" \
    bash -c "[ $rc = 0 ] && echo '$out' | grep -q '\"connected\":true'"

t=$(now)
posbridge pay --provider lifepay --amount 2500 --request-id usb-sale-0001 --json > /tmp/usb-sale.json 2>&1; rc=$?
st=$(jget /tmp/usb-sale.json data status)
bid=$(backend_id usb-sale-0001)
charged=$(reader_approved "$bid")
echo "usb-sale-0001 $bid $st" >> "$U/sales.txt"
check usb.sale "lifepay 2500 through the reader: rc=$rc $st in $(since "$t") s; the reader's state: $charged approved for $bid" \
    bash -c "[ $rc = 0 ] && [ '$st' = approved ] && [ '$charged' = 1 ]"

# Unplug in the middle of a sale: amount ...93 makes the reader take 3 s after it has charged
# (its state file has the result at once), so the cable goes while the answer is on its way.
pid0=$(mainpid)
t=$(now)
timeout 90 posbridge pay --provider lifepay --amount 4093 --request-id usb-cut-0001 --json > /tmp/usb-cut.json 2>&1 &
pay=$!
started() { b=$(backend_id usb-cut-0001); [ -n "$b" ] && grep -q "\"$b\"" "$U/reader.state.json"; }
wait_for 20 started; in_reader=$(since "$t")
# (A finished pay is a zombie until waited for, so kill -0 alone cannot tell: its answer is
# written when it ends.)
running=no; kill -0 $pay 2> /dev/null && ! [ -s /tmp/usb-cut.json ] && running=yes
host_hand unplug unplugged; unplug_ok=$?
wait_for 10 bash -c "! test -e $NODE"; gone=$(since "$t")
wait $pay; pay_rc=$?; answered=$(since "$t")
first=$(jget /tmp/usb-cut.json data status)$(jget /tmp/usb-cut.json reason)
dev_unplugged="$(dev_state)"
t_plug=$(now)
host_hand plug plugged; plug_ok=$?
wait_for 10 test -e "$NODE"; back=$(since "$t_plug")
connected() { [ "$(dev_state)" = connected ]; }
if wait_for 30 connected; then conn="connected $(since "$t_plug") s"; else conn="still not connected $(since "$t_plug") s"; fi
# One final answer: approved at once, or unknown settled by reconciliation once the reader is back.
settled() { posbridge get-result usb-cut-0001 --json > /tmp/usb-cut-result.json 2>&1; [ $? != 3 ]; }
wait_for 60 settled; settled_s=$(since "$t_plug")
final=$(jget /tmp/usb-cut-result.json data status)$(jget /tmp/usb-cut-result.json reason)
bid=$(backend_id usb-cut-0001)
charged=$(reader_approved "$bid")
echo "usb-cut-0001 $bid ${final:-none}" >> "$U/sales.txt"
fig="unplugged ${in_reader} s into the sale (pay still running: $running) (host: $(cut -d' ' -f1-2 "$U/unplugged" 2>/dev/null)), node gone at ${gone} s; pay rc=$pay_rc '$first' at ${answered} s; devices then: ${dev_unplugged}; replug $(cut -d' ' -f1-2 "$U/plugged" 2>/dev/null), node back after ${back} s; get-result '$final' ${settled_s} s after the replug; the reader: $charged approved for $bid"
# Approved only if the reader charged it, never charged twice, settled (not unknown), and the
# pay's own answer, if it was final, the same as get-result's.
cut_ok() {
    [ "$running" = yes ] || { echo "the pay had ended before the unplug"; return 1; }
    [ "$unplug_ok" = 0 ] && [ "$plug_ok" = 0 ] || { echo "QMP: unplug $unplug_ok, plug $plug_ok"; return 1; }
    [ -n "$bid" ] && [ -n "$final" ] || { echo "no backend id or no final answer"; return 1; }
    if [ "$final" = approved ]; then
        [ "$charged" = 1 ] || { echo "approved, but the reader charged $charged times"; return 1; }
    else
        [ "$charged" = 0 ] || { echo "$final, but the reader charged $charged times"; return 1; }
    fi
    [ "$pay_rc" = 3 ] || [ "$first" = "$final" ] || { echo "pay said $first, get-result $final"; return 1; }
}
check usb.replug-mid-sale "$fig" cut_ok

# Reconnected without a restart: same MainPID, devices says connected, and a next sale works.
pid1=$(mainpid)
posbridge pay --provider lifepay --amount 1200 --request-id usb-after-0001 --json > /tmp/usb-after.json 2>&1; rc=$?
st=$(jget /tmp/usb-after.json data status)
echo "usb-after-0001 $(backend_id usb-after-0001) $st" >> "$U/sales.txt"
reconnect_ok() { [ "$pid0" = "$pid1" ] && [ "$pid0" != 0 ] && connected && [ "$rc" = 0 ] && [ "$st" = approved ]; }
check usb.reconnect "MainPID $pid0 -> $pid1, $ID $conn after the replug; next sale rc=$rc $st" reconnect_ok

# usb.back-ready (issue 20 item 3): USB_REPLUGS more unplugs and replugs between sales; each
# time, from the tty's add event (the kernel's, and udev's once its rules made the name) to the
# daemon ready to sell (HELLO done), on the guest's CLOCK_MONOTONIC (parts/waits.py).
ready_lines() { journalctl -u posbridge.service -b -o cat | grep -c "$ID connected ("; }
udevadm monitor -k -u -s tty > /tmp/usb-monitor.log 2>&1 &
monitor=$!
sleep 0.5
t0=$(python3 -c 'import time; print(f"{time.monotonic():.6f}")')
for _ in $(seq "${USB_REPLUGS:-5}"); do
    host_hand unplug unplugged || break
    wait_for 10 bash -c "! test -e $NODE"
    sleep 0.5
    n_ready=$(ready_lines)
    host_hand plug plugged || break
    wait_for 30 bash -c "[ \$(journalctl -u posbridge.service -b -o cat | grep -c '$ID connected (') -gt $n_ready ]"
    sleep 0.3
done
kill $monitor 2>/dev/null; wait $monitor 2>/dev/null
journalctl --sync
journalctl -b --no-pager -o short-monotonic -u posbridge.service > /tmp/usb-waits.journal
back_fig="$(python3 /job/parts/waits.py usb "$t0" /tmp/usb-monitor.log /tmp/usb-waits.journal "$ID")"; back_rc=$?
check usb.back-ready "$back_fig" test "$back_rc" = 0

journalctl --sync
devf="$(journalctl REQUEST_ID=usb-cut-0001 -o json | python3 -c '
import json,sys
n=0; d=set()
for l in sys.stdin:
    e=json.loads(l); n+=1
    if "DEVICE" in e: d.add(e["DEVICE"])
print(n, ",".join(sorted(d)))')"
check usb.device-field "journalctl REQUEST_ID=usb-cut-0001: ${devf% *} entries, DEVICE=${devf#* }" \
    test "${devf#* }" = "$ID"
journalctl -u posbridge.service -b -o cat > /job/journal-usb.txt

# The power-cut boots have no USB device: leave no paired reader behind for them. The local
# rule is the rig's own (a technician's would stay after a purge, as Debian keeps what an admin
# wrote in /etc): remove it so that package.purge sees only what the package left.
posbridge unpair "$ID" > /dev/null 2>&1 || echo "usb: unpair $ID failed"
cp /run/usb-posbridge.toml.before /etc/posbridge/posbridge.toml
rm -f /etc/credstore/password
systemctl restart posbridge.service
rm -f /etc/udev/rules.d/69-posbridge-local.rules
udevadm control --reload
echo "usb: part 3 took $(since "$t_part") s"
true
