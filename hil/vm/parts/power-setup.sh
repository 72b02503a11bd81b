# Part 5, set-up (boot 1): the installed service sells through PhonePe's replica on the host
# (10.0.2.2 is the host's loopback under qemu user networking), with the salt key as a systemd
# credential. The network comes up at boot (systemd-networkd), so recovery can reconcile.
. /job/parts/lib.sh
mkdir -p /etc/systemd/network
# IPv4 only: with IPv6 link-local addressing (DAD) systemd-networkd-wait-online, which the unit's
# network-online.target waits for, took 4.3 s of every 12 s boot after a cut.
printf '[Match]\nName=eth0\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' > /etc/systemd/network/10-eth0.network
systemctl enable --now systemd-networkd > /dev/null 2>&1
install -d -m 0700 /etc/credstore
install -m 0600 /job/salt_key /etc/credstore/salt_key   # the host lists it in /job/secrets
port=$(cat /job/replica_port)
broken replica-port && port=9   # control: the config names a port nothing listens on
sed -i 's/^default_provider = .*/default_provider = "phonepe"/' /etc/posbridge/posbridge.toml
cat >> /etc/posbridge/posbridge.toml <<CONF

# hil/vm: PhonePe's replica on the host.
[providers.phonepe]
base_url = "http://10.0.2.2:$port"
merchant_id = "VMMERCHANT"
store_id = "store1"
terminal_id = "counter1"
salt_index = 1
solution_type = "EDC"
timeout_ms = 60000
status_poll_ms = [500]
# A sale cut before it reached the replica is "not processed" only once it can no longer come
# alive there: twice the request timeout + the sale's handover window + the first status
# interval (src/provider/phonepe/mod.rs, alive_for). With the defaults (15 s, 60 s) that was
# 90 s of the verify boot; the rig's sales ask for a 10 s handover (the replica pays in 0.3 s).
request_timeout_ms = 3000
CONF
posbridge config check /etc/posbridge/posbridge.toml > /tmp/cfg.out 2>&1 || { step power.setup FAIL "config: $(tail -2 /tmp/cfg.out | tr '\n' ' ')"; exit 1; }
if [ "$(cat /job/control)" = eatmydata ]; then
    # The control run: fsync() is a no-op for the daemon, so what it acknowledges may still sit in
    # the guest's page cache when the power goes.
    mkdir -p /etc/systemd/system/posbridge.service.d
    printf '[Service]\nEnvironment=LD_PRELOAD=libeatmydata.so\n' > /etc/systemd/system/posbridge.service.d/vm-control.conf
    systemctl daemon-reload
    echo "control run: posbridge.service under libeatmydata"
fi
systemctl restart posbridge.service
t=$(now)
out="$(posbridge pay --amount 1200 --request-id pc-setup-1 --param handover_seconds=10 --json 2>&1)"; rc=$?
check power.setup "first PhonePe sale through the host replica: rc=$rc in $(since "$t") s $(echo "$out" | grep -o '"status":"[a-z_]*"' | head -1)" \
    bash -c "[ $rc = 0 ] && echo '$out' | grep -q '\"status\":\"approved\"'"
[ $rc = 0 ] && echo "SENT pc-setup-1" >> /job/acks && echo "ACK pc-setup-1" >> /job/acks
bash /job/parts/secrets.sh supervise
if broken refuse-after-restart; then
    # Control: the config the daemon reads at its next start names a port nothing listens on, so
    # from the first cut boot on it refuses every sale (boot 1's set-up sale was approved).
    sed -i 's#^base_url = "http://10.0.2.2:[0-9]*"#base_url = "http://10.0.2.2:9"#' /etc/posbridge/posbridge.toml
    echo "control run: every sale after this boot is refused (base_url port 9)"
fi
if broken no-start-after-restart; then
    # Control: from its next start on the service never becomes active (a drop-in whose
    # ExecStartPre fails): each cut boot must then count as one that never sold, with the reason.
    mkdir -p /etc/systemd/system/posbridge.service.d
    printf '[Service]\nExecStartPre=/bin/false\n' > /etc/systemd/system/posbridge.service.d/vm-no-start.conf
    echo "control run: the service does not start after this boot"
fi
true
