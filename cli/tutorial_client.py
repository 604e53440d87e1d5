"""A chat client in Python, written as a Django Channels tutorial reader would write one.

It speaks the tutorial's wire protocol with `websocket-client` (Debian: python3-websocket):
connect to /ws/chat/<room>/, send {"message": ...}, and read the room's frames, each with
at least a "message". The tests run it against this server to show the protocol is the
tutorial's.

Usage: python3 cli/tutorial_client.py [--token TOKEN] <ws-base-url> <room> <message> [<until>]
Sends <message> to <room>, prints every frame's "author: message" until one carries <until>
(default: <message> itself, the echo of what it sent), then closes. Ctrl-C stops it with one
line on stderr and exit code 130.

With --token (made by `deno task token <username>` or on /account/tokens/), it connects as
that user: the token goes in an `Authorization: Bearer` header, never in the URL.
"""

import json
import sys
import unicodedata
import urllib.parse

from websocket import WebSocketBadStatusException, WebSocketException, create_connection

USAGE = (
    "Usage: python3 cli/tutorial_client.py [--token TOKEN] "
    "<ws-base-url> <room> <message> [<until>]"
)


def main(base_url, room, message, until, token=None):
    url = f"{base_url}/ws/chat/{urllib.parse.quote(room, safe='')}/"
    header = [f"Authorization: Bearer {token}"] if token else []
    try:
        ws = create_connection(url, timeout=15, header=header)
    except WebSocketBadStatusException as error:
        # A refused token is a 403; the server's log line says why (expired, revoked...).
        hint = " (the token may be expired or revoked)" if token and error.status_code == 403 else ""
        # websocket-client 1.8 and later add the headers and body after " -+-+- ": one line.
        status = str(error).split(" -+-+- ")[0].strip()
        print(f"! Connection refused: {status}{hint}", file=sys.stderr)
        return 1
    except (OSError, WebSocketException, ValueError) as error:
        # The server is down, the URL is not ws:// or wss://, no answer in time: one line.
        print(f"! Could not connect to {base_url}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C is the user's answer, not a crash: one line, and the shell's 130 (128 + SIGINT).
        print("! Interrupted before the connection opened: nothing was sent", file=sys.stderr)
        return 130
    try:
        ws.send(json.dumps({"message": message}))
        while True:
            data = json.loads(ws.recv())
            if data.get("type") == "error":
                print(f"! {printable(data['error'])}", file=sys.stderr)
                return 1
            if data.get("history"):
                continue
            print(f"{printable(data.get('author', '?'))}: {printable(data['message'])}", flush=True)
            if data["message"] == until:
                return 0
    except (OSError, WebSocketException) as error:
        print(f"! The connection ended before {until!r} came back: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"! Interrupted before {until!r} came back", file=sys.stderr)
        return 130
    finally:
        ws.close()


# The line and paragraph separators, and the bidirectional controls (which show the rest of a
# line reordered).
UNPRINTABLE = set("\u2028\u2029\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                  "\u2066\u2067\u2068\u2069")


def printable(text):
    """Text from other users with what a terminal would obey (escape sequences, line breaks,
    bidirectional controls) written as escapes: raw, a message could clear the screen, pass for
    another's line or show its text reordered."""
    return "".join(
        c.encode("unicode_escape").decode("ascii")
        if unicodedata.category(c) == "Cc" or c in UNPRINTABLE
        else c
        for c in str(text)
    )


def split_token(args):
    """Takes `--token TOKEN` or `--token=TOKEN` out of args; returns (token, the rest)."""
    token, rest = None, []
    i = 0
    while i < len(args):
        if args[i] == "--token":
            # Without a value (the last word), it is a mistake, not the message to wait for.
            token = args[i + 1] if i + 1 < len(args) else ""
            i += 2
            continue
        if args[i].startswith("--token="):
            token = args[i][len("--token="):]
        else:
            rest.append(args[i])
        i += 1
    return token, rest


if __name__ == "__main__":
    token, args = split_token(sys.argv[1:])
    if len(args) < 3 or len(args) > 4 or token == "":
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    if args[1] in (".", ".."):
        # Path segments a URL resolves away: /ws/chat/./ is another route.
        print(f'! No chat room can be named "{args[1]}"\n{USAGE}', file=sys.stderr)
        sys.exit(2)
    until = args[3] if len(args) > 3 else args[2]
    sys.exit(main(args[0], args[1], args[2], until, token=token))
