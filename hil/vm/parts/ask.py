# The POS side at its lowest: sends each argument as one request line on one connection to the
# API socket and prints each answer line exactly as it came (no JSON round trip), so answers
# can be compared byte for byte across versions. `ask.py get_result ID...` asks get_result for
# each ID. Used by parts/upgrade.sh.
import json, socket, sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(120)
sock.connect("/run/posbridge/api.sock")
f = sock.makefile("rb")
for rid in sys.argv[2:]:
    sock.sendall((json.dumps({"action": sys.argv[1], "request_id": rid}) + "\n").encode())
    line = f.readline()
    sys.stdout.write(rid + " " + line.decode())
