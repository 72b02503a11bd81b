# Part 4 (BLE), started in the background at the top of boot 1 so that bumble's slow start under
# TCG (10-17 s of imports and controller set-up) overlaps part 1: the bumble reader
# (ble-reader.py: a vhci controller for the kernel plus a NUS peripheral on one bumble link) and,
# once the package is installed, `posbridge emulate card-reader` as its firmware behind a pty.
# parts/ble.sh waits for both.
mkdir -p /run/ble
/opt/bumble/bin/python /job/parts/ble-reader.py --pty /run/ble/link > /run/ble/reader.log 2>&1 &
echo $! > /run/ble/reader.pid
for _ in $(seq 3000); do [ -x /usr/bin/posbridge ] && break; sleep 0.1; done
# The reader accepts only the login and password parts/ble.sh configures (shop-17,
# vm-ble-s3cret): a sale it approves proves the configured password reached it.
(umask 077 && printf 'vm-ble-s3cret\n' > /run/ble/account.password)
# Each line of the emulator's log is stamped with CLOCK_MONOTONIC as it comes (ble.pay-to-amount
# times the START_SALE's arrival from it).
posbridge emulate card-reader --pty /run/ble/link --state /run/ble/state.json --serial BLEVM1 \
    --account shop-17:/run/ble/account.password > /dev/null \
    2> >(python3 -u -c 'import sys, time
for line in sys.stdin:
    sys.stdout.write(f"{time.monotonic():.6f} {line}")' > /run/ble/emulator.log) &
echo $! > /run/ble/emulator.pid
