"""Runs a command in a pseudo-terminal and types into it, as a person at a terminal would.

Usage: python3 in_terminal.py STEPS_JSON -- COMMAND...

STEPS_JSON is a list of [prompt, keys]: once the output holds `prompt`, `keys` (a string whose
characters below U+0100 are sent as single bytes, so b"\\xc3\\xa9" is written "\\u00c3\\u00a9")
is typed. Prints one JSON object: {"output": what the terminal showed, "code": exit code}.
"""
import json
import os
import pty
import select
import signal
import sys
import time

WAIT_S = 20


def main():
    split = sys.argv.index("--")
    steps = json.loads(sys.argv[1])
    command = sys.argv[split + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    output = b""

    def read_until(text):
        nonlocal output
        end = time.time() + WAIT_S
        while text.encode() not in output:
            if time.time() > end:
                raise SystemExit(json.dumps({"output": output.decode(errors="replace"),
                                             "code": None, "waited_for": text}))
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    return

    for prompt, keys in steps:
        read_until(prompt)
        os.write(fd, keys.encode("latin-1"))
    # Until the command ends; one still waiting for input after WAIT_S is killed (code null).
    end = time.time() + WAIT_S
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    done, status = os.waitpid(pid, os.WNOHANG)
    while done == 0 and time.time() < end:  # the terminal closed: its exit follows
        time.sleep(0.01)
        done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        os.waitpid(pid, 0)
        print(json.dumps({"output": output.decode(errors="replace"), "code": None}))
        return
    print(json.dumps({"output": output.decode(errors="replace"),
                      "code": os.waitstatus_to_exitcode(status)}))


main()
