import { assertEquals } from "@std/assert";
import { checkHandshake } from "../../server/handshake.ts";

/** A base64 key of `length` random bytes; 16 makes a valid `Sec-WebSocket-Key`. */
function randomKey(length = 16): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(length))));
}

/** A valid handshake, with `changes` applied: a `null` value removes that header. */
function handshake(
  changes: Record<string, string | null> = {},
  method = "GET",
): Request {
  const headers = new Headers({
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": randomKey(),
  });
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return new Request("http://localhost/ws", { method, headers });
}

const BAD_KEY = "Bad handshake: Sec-WebSocket-Key must be 16 bytes in base64";

Deno.test("a valid handshake may be upgraded", () => {
  assertEquals(checkHandshake(handshake()), null);
});

Deno.test("header tokens are matched case-insensitively, in comma-separated lists", () => {
  const request = handshake({ upgrade: "h2c, WebSocket", connection: "keep-alive, Upgrade" });
  assertEquals(checkHandshake(request), null);
});

Deno.test("a key with surrounding whitespace is accepted", () => {
  const request = handshake({ "sec-websocket-key": ` ${randomKey()}\t` });
  assertEquals(checkHandshake(request), null);
});

Deno.test("a plain GET to a WebSocket route gets 426 saying how to upgrade", () => {
  assertEquals(checkHandshake(new Request("http://localhost/ws")), {
    status: 426,
    reason: "Not a WebSocket upgrade: connect with a WebSocket client",
    headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13" },
  });
});

Deno.test("an Upgrade header without the websocket token gets 426", () => {
  assertEquals(checkHandshake(handshake({ upgrade: "h2c" }))?.status, 426);
});

Deno.test("a POST with upgrade headers gets 400 naming the method", () => {
  assertEquals(checkHandshake(handshake({}, "POST")), {
    status: 400,
    reason: 'Bad handshake: method "POST" is not allowed, use "GET"',
    headers: {},
  });
});

Deno.test("a Connection header without the upgrade token gets 400", () => {
  const expected = {
    status: 400,
    reason: 'Bad handshake: the Connection header must contain "Upgrade"',
    headers: {},
  };
  assertEquals(checkHandshake(handshake({ connection: "keep-alive" })), expected);
  assertEquals(checkHandshake(handshake({ connection: null })), expected);
});

Deno.test("version 8 gets 426 naming version 13", () => {
  assertEquals(checkHandshake(handshake({ "sec-websocket-version": "8" })), {
    status: 426,
    reason: 'Unsupported WebSocket version "8": this server speaks version 13',
    headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13" },
  });
});

Deno.test("a huge version is quoted cut to 200 characters, with its length", () => {
  const refusal = checkHandshake(handshake({ "sec-websocket-version": "9".repeat(60_000) }));
  assertEquals(refusal?.status, 426);
  assertEquals(
    refusal?.reason,
    `Unsupported WebSocket version "${"9".repeat(200)}"… (60000 characters): this server ` +
      "speaks version 13",
  );
});

Deno.test("a missing version gets 426 naming version 13", () => {
  const refusal = checkHandshake(handshake({ "sec-websocket-version": null }));
  assertEquals(refusal?.status, 426);
  assertEquals(refusal?.headers["sec-websocket-version"], "13");
});

Deno.test("a missing key gets 400", () => {
  assertEquals(checkHandshake(handshake({ "sec-websocket-key": null })), {
    status: 400,
    reason: BAD_KEY,
    headers: {},
  });
});

Deno.test("keys that are not 16 bytes in padded base64 get 400", () => {
  const sixteen = randomKey();
  const keys = {
    "15 bytes": randomKey(15),
    "17 bytes": randomKey(17),
    "not base64": "!".repeat(22) + "==",
    "url-safe alphabet": "-_" + sixteen.slice(2),
    "no padding": sixteen.slice(0, 22),
    "wrong padding": sixteen.slice(0, 22) + "=",
    "padding inside": sixteen.slice(0, 21) + "=A=",
    "empty": "",
  };
  for (const [name, key] of Object.entries(keys)) {
    const refusal = checkHandshake(handshake({ "sec-websocket-key": key }));
    assertEquals(refusal, { status: 400, reason: BAD_KEY, headers: {} }, name);
  }
});
