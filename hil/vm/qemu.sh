# Sourced by hil/vm/run: boots the guest under qemu (TCG: no KVM on CI machines), niced so that
# other work on the 2 cores still progresses. The disk is the run's own copy (W/disk.raw) with
# the cache mode asked for; the job share is W/job (9p); the guest reaches the host's loopback
# at 10.0.2.2. Console output goes to W/console-NAME.log. no_timer_check: under TCG on a busy
# host the kernel's IO-APIC timer check can fail ("IO-APIC + timer doesn't work!", a panic at
# 0.05 s; seen once in part 3's runs).
QEMU=""
VM_EXTRA=()
vm_cmd() {
    local W="$1" name="$2" mode="$3"
    VM=(nice -n 10 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 1024 -smp 2
        -display none -no-reboot -monitor none -serial "file:$W/console-$name.log"
        -kernel "$C/img/vmlinux" -initrd "$C/img/initrd.gz"
        -append "console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=false net.ifnames=0 no_timer_check"
        -drive "file=$W/disk.raw,format=raw,if=virtio,cache=$mode"
        -virtfs "local,path=$W/job,mount_tag=job,security_model=none"
        -nic user,model=virtio-net-pci
        -qmp "unix:$W/qmp.sock,server=on,wait=off")
    # Part 3 (usb): extra devices for one boot, e.g. the usb-serial reader (set by hil/vm/run).
    VM+=("${VM_EXTRA[@]}")
}
# vm_boot W NAME CACHE TIMEOUT: boots, waits for the job's poweroff (or TIMEOUT s).
vm_boot() {
    rm -f "$1/job/rc"; echo "$2" > "$1/job/boot"
    vm_cmd "$1" "$2" "$3"
    timeout --signal=KILL "$4" "${VM[@]}" < /dev/null
}
# vm_boot_bg W NAME CACHE: boots in the background; qemu's pid is in QEMU (nice execs it).
vm_boot_bg() {
    rm -f "$1/job/rc"; echo "$2" > "$1/job/boot"
    vm_cmd "$1" "$2" "$3"
    "${VM[@]}" < /dev/null &
    QEMU=$!
}
vm_kill() { if [ -n "$QEMU" ]; then kill -KILL "$QEMU" 2>/dev/null || true; fi; }
