# Part 5, one power-cut boot: waits for the service (it recovers and reconciles first), then sells
# until the host SIGKILLs qemu. Every sale is logged on the host side (9p: the write reaches the
# host before `echo` returns): SENT before it is asked, ACK once it is acknowledged approved,
# NACK (with the answer) when it is not. `/job/selling` is written only once the service is
# active; a boot whose service never becomes active writes `/job/not-selling` with the reason,
# and the host counts it as a boot that never sold (power.cuts fails).
. /job/parts/lib.sh
boot=$(cat /job/boot)
# This boot's journal, streamed to the host as it is written (the guest's journal is volatile,
# and the SIGKILL ends the boot): parts/secrets.sh searches it in the verify boot.
mkdir -p /job/journal
journalctl -b -f -n all -o json > "/job/journal/$boot.json" 2> /dev/null &
if broken log-secret; then   # control: a secret the rig used (parts set them in /job/secrets) logged
    s="$(awk '$1 == "usb.lifepay-password" {print $2}' /job/secrets)"
    [ -n "$s" ] || s="$(awk 'NR == 1 {print $2}' /job/secrets)"
    echo "vm control run: the secret $s in the journal" | systemd-cat -t vm-control
fi
if ! wait_for 120 systemctl is-active -q posbridge.service; then
    echo "$boot: posbridge.service not active 120 s into the job: $(systemctl show -p ActiveState,SubState,Result posbridge.service | tr '\n' ' ')" > /job/not-selling
    exit 1
fi
echo "$boot $(systemctl show -P StatusText posbridge.service)" >> /job/boots
# The guest's own figures for the host's log: uptime, and when the service became active.
echo "uptime $(cut -d' ' -f1 /proc/uptime) s, service active at $(( $(systemctl show -P ActiveEnterTimestampMonotonic posbridge.service) / 1000 )) ms" > /job/selling
# hil/vm/run --debug: where this boot's time went, for the host's log (in the background).
if [ "$(cat /job/debug 2>/dev/null)" = 1 ]; then
    { systemd-analyze; systemd-analyze blame | head -15; systemd-analyze critical-chain posbridge.service; } \
        > "/job/analyze-$boot.txt" 2>&1 &
fi
k=0
while :; do
    k=$((k + 1)); id="pc-$boot-$k"
    echo "SENT $id" >> /job/acks
    out="$(posbridge pay --amount 1200 --request-id "$id" --param handover_seconds=10 --json 2>&1)"; rc=$?
    if [ $rc = 0 ] && echo "$out" | grep -q '"status":"approved"'; then echo "ACK $id" >> /job/acks
    else echo "NACK $id rc=$rc $(echo "$out" | head -c 200 | tr '\n' ' ')" >> /job/acks; fi
done
