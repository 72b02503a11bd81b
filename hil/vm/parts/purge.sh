# Part 1 (end): a purge leaves nothing but what Debian policy keeps: the system user and group,
# and the journal in /var/lib/posbridge (kept on purpose, see packaging/debian/postrm).
. /job/parts/lib.sh
# The test drop-ins of hil/vm (watchdog, control run) are this rig's, not the package's.
rm -f /etc/systemd/system/posbridge.service.d/vm-*.conf
rmdir /etc/systemd/system/posbridge.service.d 2> /dev/null || true
t=$(now)
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q posbridge > /tmp/purge.log 2>&1; rc=$?
left="$(find / -xdev \( -path /proc -o -path /sys -o -path /job -o -path /home \) -prune -o -name '*posbridge*' -print 2>/dev/null \
    | grep -v -e '^/var/lib/posbridge' -e '^/var/lib/systemd/deb-systemd' -e '^/var/log/journal' | sort | tr '\n' ' ')"
active="$(systemctl is-active posbridge.socket posbridge.service | tr '\n' ' ')"
check package.purge "rc=$rc in $(since "$t") s; units: $active; left: ${left:-nothing}; kept: $(ls -d /var/lib/posbridge 2>/dev/null) user $(id -u posbridge 2>/dev/null)" \
    bash -c "[ $rc = 0 ] && [ -z '$left' ]"
