"""A chat client in Python, written as a Django Channels tutorial reader would write one.

It speaks the tutorial's wire protocol with `websocket-client` (Debian: python3-websocket):
connect to /ws/chat/<room>/, send {"message": ...}, and read the room's frames, each with
at least a "message". The tests run it against this server to show the protocol is the
tutorial's.

Usage: python3 cli/tutorial_client.py <ws-base-url> <room> <message> [<until>]
Sends <message> to <room>, prints every frame's "author: message" until one carries <until>
(default: <message> itself, the echo of what it sent), then closes.
"""

import json
import sys
import urllib.parse

from websocket import create_connection

USAGE = "Usage: python3 cli/tutorial_client.py <ws-base-url> <room> <message> [<until>]"


def main(base_url, room, message, until):
    url = f"{base_url}/ws/chat/{urllib.parse.quote(room, safe='')}/"
    ws = create_connection(url, timeout=15)
    try:
        ws.send(json.dumps({"message": message}))
        while True:
            data = json.loads(ws.recv())
            if data.get("type") == "error":
                print(f"! {data['error']}", file=sys.stderr)
                return 1
            if data.get("history"):
                continue
            print(f"{data.get('author', '?')}: {data['message']}", flush=True)
            if data["message"] == until:
                return 0
    finally:
        ws.close()


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    args = sys.argv[1:]
    sys.exit(main(args[0], args[1], args[2], args[3] if len(args) > 3 else args[2]))
