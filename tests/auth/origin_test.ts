/**
 * A WebSocket's Origin against the host the request was made to: behind a trusted proxy
 * (`TRUST_PROXY`) that host is the one `X-Forwarded-Host` names; without it that header is
 * anyone's to write, and is not read.
 */
import { assertEquals } from "@std/assert";
import { isOriginAllowed } from "../../mod.ts";
import { isSecureRequest } from "../../auth/cookies.ts";
import { originRefusal } from "../../auth/origin.ts";

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

// A proxy that appends puts its own entry last; what comes before it the client wrote.
Deno.test("of a forwarded header with several entries, the last (the proxy's own) is read", () => {
  const policy = { allowedHosts: [], trustProxy: true };
  const appended = (forwardedHost: string, origin: string) =>
    new Request("http://127.0.0.1:8001/ws/chat/lobby/", {
      headers: { host: "127.0.0.1:8001", "x-forwarded-host": forwardedHost, origin },
    });
  const forged = appended("evil.example, chat.example.com", "https://evil.example");
  assertEquals(isOriginAllowed(forged, policy), false, "the client's own entry was believed");
  const real = appended("evil.example, chat.example.com", "https://chat.example.com");
  assertEquals(isOriginAllowed(real, policy), true);
  // The scheme: a client over http that wrote `https` is not taken for a secure one.
  const proto = (value: string) =>
    new Request("http://127.0.0.1:8001/", { headers: { "x-forwarded-proto": value } });
  assertEquals(isSecureRequest(proto("https, http"), true), false);
  assertEquals(isSecureRequest(proto("http, https"), true), true);
  assertEquals(isSecureRequest(proto("https"), false), false, "read without TRUST_PROXY");
});

// As the form check (Django's): a network attacker who writes into the http page of the same
// host must not open a socket to the https site, which carries the user's cookie.
Deno.test("over https, a page of the same host served over plain http may not open a socket", () => {
  const policy = { allowedHosts: [], trustProxy: true };
  const upgrade = (origin: string, proto: string) =>
    new Request("http://127.0.0.1:8001/ws/chat/lobby/", {
      headers: { host: "chat.example.com", "x-forwarded-proto": proto, origin },
    });
  assertEquals(isOriginAllowed(upgrade("http://chat.example.com", "https"), policy), false);
  assertEquals(isOriginAllowed(upgrade("https://chat.example.com", "https"), policy), true);
  assertEquals(isOriginAllowed(upgrade("http://chat.example.com", "http"), policy), true);
  const listed = { allowedHosts: ["chat.example.com"], trustProxy: true };
  assertEquals(isOriginAllowed(upgrade("http://chat.example.com", "https"), listed), false);
});

Deno.test("a refused Origin's reason names the host it was compared with, and which header gave it", () => {
  const upgrade = (headers: Record<string, string>) =>
    new Request("http://127.0.0.1:8001/ws/chat/lobby/", { headers });
  const page = { origin: "https://chat.example.com" };
  // A proxy that passes on no host: the server compares with its own address.
  assertEquals(
    originRefusal(upgrade({ ...page, host: "127.0.0.1:8001" }), {
      allowedHosts: [],
      trustProxy: false,
    }),
    'is not the host the request was made to, "127.0.0.1:8001" (from its Host header; ALLOWED_HOSTS is empty)',
  );
  // nginx's `$host`: the port gone.
  assertEquals(
    originRefusal(
      upgrade({ origin: "https://chat.example.com:8443", "x-forwarded-host": "chat.example.com" }),
      { allowedHosts: [], trustProxy: true },
    ),
    'is not the host the request was made to, "chat.example.com" (from its X-Forwarded-Host; ALLOWED_HOSTS is empty)',
  );
  assertEquals(
    originRefusal(upgrade(page), { allowedHosts: ["example.org"], trustProxy: false }),
    "is not an allowed host (ALLOWED_HOSTS)",
  );
});
