#!/usr/bin/env python3
"""A POS talking to posbridge, standard library only (examples/README.md).

What a real POS must do, in the order a cashier meets it:
  1. pay with its own request_id: a declined card is a final answer, sell again with a new id;
  2. a pay whose outcome is unknown (unknown_result_error): never pay again; when the cashier
     presses the button, ask get_result with the same request_id until the code is not 2;
  3. the same request_id sent again: duplicate_request_error, answered by asking get_result;
  4. refund half of the pay, passing the pay's `data` back as `primary_transaction`.
Each pay asks for progress ("progress": true): the event lines before its answer (a line with
`event`, never a `code`) are printed as they come, e.g. for the cashier's screen.

Usage: pos.py [--yes] [SOCKET]   (SOCKET: else $POSBRIDGE_SOCKET, else /run/posbridge/api.sock)
--yes (or stdin not a terminal) answers the cashier's prompt. Every step prints one line:
  STEP id=REQUEST_ID amount=N -> code=C RESULT
and each progress event one line:
  progress   id=REQUEST_ID STAGE: MESSAGE
"""

import json
import os
import socket
import sys
import time

# The sim provider: an amount ending in 51 is declined; 91 answers unknown_result_error and
# settles on get_result.
DECLINED, UNKNOWN = 1051, 2591


class Posbridge:
    """One connection: one JSON line out, one JSON line back (after the request's progress
    event lines, when it asked for them)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r", encoding="utf-8", newline="\n")

    def ask(self, request):
        self.sock.sendall((json.dumps(request) + "\n").encode("utf-8"))
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("posbridge closed the connection")
            answer = json.loads(line)
            if "code" in answer:
                return answer
            # A progress event: what the terminal or backend reports while the pay runs.
            print("%-10s id=%s %s: %s" % ("progress", answer["request_id"], answer["stage"],
                                          answer["message"]), flush=True)


def result(answer):
    """The answer in a few words: the data's status, or error_type and reason."""
    if answer["code"] == 0:
        data = answer["data"]
        return "code=0 %s amount=%s" % (data["status"], data["amount"])
    return "code=%d %s %s" % (answer["code"], answer["error_type"], answer["reason"])


def step(name, request_id, amount, answer):
    print("%-10s id=%s amount=%d -> %s" % (name, request_id, amount, result(answer)), flush=True)


def cashier_presses_button(yes):
    question = "outcome unknown: press Enter to ask the terminal again"
    if yes or not sys.stdin.isatty():
        print("%-10s %s -> yes" % ("cashier", question), flush=True)
        return
    input("%-10s %s " % ("cashier", question))


def get_result(pos, request_id, amount):
    """Asks until the outcome is known (code 2 means: not yet; ask again)."""
    for _ in range(120):
        answer = pos.ask({"action": "get_result", "request_id": request_id})
        if answer["code"] != 2 or answer["reason"] == "manual_check":
            step("get_result", request_id, amount, answer)
            return answer
        time.sleep(1)
    sys.exit("%s: the outcome is still unknown; check it before selling again" % request_id)


def main(argv):
    yes = "--yes" in argv
    args = [a for a in argv if a != "--yes"]
    path = args[0] if args else os.environ.get("POSBRIDGE_SOCKET", "/run/posbridge/api.sock")
    pos = Posbridge(path)
    prefix = "pos-python-%d" % int(time.time() * 1000)

    # 1. A declined card: final; nothing charged.
    pay = {"action": "pay", "request_id": prefix + "-1", "amount": DECLINED, "progress": True}
    step("pay", pay["request_id"], DECLINED, pos.ask(pay))

    # 2. A pay whose outcome is unknown: ask get_result when the cashier says so.
    pay = {"action": "pay", "request_id": prefix + "-2", "amount": UNKNOWN,
           "metadata": {"till": "3"}, "progress": True}
    answer = pos.ask(pay)
    step("pay", pay["request_id"], UNKNOWN, answer)
    if answer["code"] == 2:
        cashier_presses_button(yes)
        answer = get_result(pos, pay["request_id"], UNKNOWN)
    if answer["code"] != 0:
        sys.exit("the pay was not approved")
    paid = answer["data"]

    # 3. The same request_id again (a POS that lost the answer and retried): never charged
    #    twice; duplicate_request_error says ask get_result.
    again = pos.ask(pay)
    step("pay", pay["request_id"], UNKNOWN, again)
    if again["code"] == 3:
        answer = get_result(pos, pay["request_id"], UNKNOWN)

    # 4. Refund half, naming the pay by its data.
    half = paid["amount"] // 2
    refund = {"action": "refund", "request_id": prefix + "-3", "amount": half,
              "primary_transaction": paid}
    answer = pos.ask(refund)
    step("refund", refund["request_id"], half, answer)
    if answer["code"] == 2:
        answer = get_result(pos, refund["request_id"], half)
    return 0 if answer["code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
