# Part 5, one power-cut boot: waits for the service (it recovers and reconciles first), then sells
# until the host SIGKILLs qemu. Every sale is logged on the host side (9p: the write reaches the
# host before `echo` returns): SENT before it is asked, ACK once it is acknowledged approved.
. /job/parts/lib.sh
boot=$(cat /job/boot)
wait_for 120 systemctl is-active -q posbridge.service
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
    else echo "NACK $id rc=$rc $(echo "$out" | head -c 200)" >> /job/acks; fi
done
