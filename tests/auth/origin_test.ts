/**
 * A WebSocket's Origin against the host the request was made to: behind a trusted proxy
 * (`TRUST_PROXY`) that host is the one `X-Forwarded-Host` names; without it that header is
 * anyone's to write, and is not read.
 */
import { assertEquals } from "@std/assert";
import { isOriginAllowed } from "../../mod.ts";

// A proxy that passes its upstream's address as Host and the public name in X-Forwarded-Host.
function proxied(origin: string): Request {
  return new Request("http://127.0.0.1:8001/ws/chat/lobby/", {
    headers: { host: "127.0.0.1:8001", "x-forwarded-host": "chat.example.com", origin },
  });
}

Deno.test("behind a trusted proxy the Origin is checked against X-Forwarded-Host", () => {
  const policy = { allowedHosts: [], trustProxy: true };
  assertEquals(isOriginAllowed(proxied("https://chat.example.com"), policy), true);
  assertEquals(isOriginAllowed(proxied("https://evil.example"), policy), false);
});

Deno.test("without TRUST_PROXY, X-Forwarded-Host is not read: the Origin must match Host", () => {
  const policy = { allowedHosts: [], trustProxy: false };
  assertEquals(isOriginAllowed(proxied("https://chat.example.com"), policy), false);
  assertEquals(isOriginAllowed(proxied("http://127.0.0.1:8001"), policy), true);
});
