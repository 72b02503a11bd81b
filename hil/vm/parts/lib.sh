# Sourced by every part in the guest. `step NAME PASS|FAIL FIGURE...` prints the summary line
# hil/vm/run collects; `check NAME FIGURE CMD...` runs CMD and prints PASS or FAIL.
# `wait_for SECONDS CMD...` polls CMD every 0.1 s, bounded.
step() { local n="$1" s="$2"; shift 2; echo "STEP $n: $s $*"; }
check() {
    local n="$1" fig="$2"; shift 2
    if "$@" > /tmp/check.out 2>&1; then step "$n" PASS "$fig"; else step "$n" FAIL "$fig: $(tail -3 /tmp/check.out | tr '\n' ' ')"; fi
}
wait_for() {
    local t="$1"; shift
    local end=$(( $(date +%s%N) + t * 1000000000 ))
    until "$@" > /dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.1
    done
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# `broken KNOB`: a control run asked for KNOB (hil/vm/run --break a,b; hil/vm/README.md, "Seen
# failing"): the part then breaks what the step checks, and the step must fail.
broken() { [[ ",$(cat /job/break 2>/dev/null),${BLE_BREAK:-}," == *",$1,"* ]]; }
