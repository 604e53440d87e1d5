/** How an access line names a client behind a trusted proxy (`server/_shown_client.ts`). */
import { assert, assertEquals } from "@std/assert";
import { shownClient } from "../../server/_shown_client.ts";

Deno.test("a forwarded address is shown with the proxy's connection; a client served straight as itself", () => {
  assertEquals(shownClient("203.0.113.7", "127.0.0.1:55906"), "203.0.113.7 via 127.0.0.1:55906");
  assertEquals(shownClient("[2001:db8::7]", "[::1]:55906"), "[2001:db8::7] via [::1]:55906");
  assertEquals(shownClient("198.51.100.9:4444", "198.51.100.9:4444"), "198.51.100.9:4444");
  assertEquals(shownClient("-", "-"), "-", "no connection: a test's request");
  assertEquals(shownClient("127.0.0.1:40000", undefined), "127.0.0.1:40000");
});

Deno.test("a forwarded value a client wrote can neither forge a proxy connection nor push the real one out", () => {
  // A proxy that passes the header on leaves its last entry to the client.
  assertEquals(
    shownClient("203.0.113.7 via 10.0.0.5:1234", "198.51.100.9:4444"),
    '"203.0.113.7 via 10.0.0.5:1234" via 198.51.100.9:4444',
  );
  const long = shownClient(`203.0.113.7${"x".repeat(600)}`, "198.51.100.9:4444");
  assert(long.endsWith(" via 198.51.100.9:4444") && long.length < 300, long);
});
