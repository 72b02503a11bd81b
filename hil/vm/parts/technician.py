# Part 4 (BLE): the technician at the counter running one `posbridge pair` (issue 22). Runs the
# command given after OUT, reads its stderr as a person reads the screen: when the CLI asks
# "the reader shows a six-digit code. Is it NNNNNN? [y/N] ", looks at the reader's display (its
# newest "ble-reader: code NNNNNN" line in READER_LOG, one printed after this started) and
# answers on stdin: `compare` answers y only when the two codes are the same, `yes` answers y
# whatever they are (a careless technician: the say-yes control), `no` answers n.
#
# Usage: technician.py compare|yes|no READER_LOG OUT COMMAND...
# The command's stdout (the --json answer) goes to OUT, its stderr to OUT.err. Prints one line,
# "cli NNNNNN, reader NNNNNN, answered y|n" ("none" for a code not seen or a question not
# asked), and exits with the command's exit code (124 when it ran over 150 s).
import os, re, select, subprocess, sys, time

mode, reader_log, out = sys.argv[1:4]
cmd = sys.argv[4:]


def reader_codes():
    try:
        return re.findall(r"ble-reader: code (\d{6})", open(reader_log, errors="replace").read())
    except OSError:
        return []


seen_before = len(reader_codes())
with open(out, "wb") as stdout, open(out + ".err", "wb") as errlog:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE)
    err = b""
    cli = reader = answered = None
    end = time.monotonic() + 150
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            errlog.write(chunk)
            errlog.flush()
            err += chunk
        asked = re.search(rb"Is it (\d{6})\? \[y/N\]", err)
        if asked and answered is None:
            cli = asked.group(1).decode()
            # The reader shows its code at about the time the CLI asks: wait for it, bounded.
            for _ in range(150):
                new = reader_codes()[seen_before:]
                if new:
                    reader = new[-1]
                    break
                time.sleep(0.1)
            yes = mode == "yes" or (mode == "compare" and reader == cli)
            answered = "y" if yes else "n"
            try:
                proc.stdin.write(answered.encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                pass
    try:
        rc = proc.wait(timeout=max(1, end - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = 124
    try:
        proc.stdin.close()
    except BrokenPipeError:
        pass
    rest = proc.stderr.read()
    errlog.write(rest)
print(f"cli {cli or 'none'}, reader {reader or 'none'}, answered {answered or 'none'}")
sys.exit(rc)
