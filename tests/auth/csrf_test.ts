import { assertEquals, assertNotEquals } from "@std/assert";
import { CSRF_FIELD, csrfFailure, csrfSecret, maskToken, newCsrfSecret } from "../../auth/csrf.ts";

const POLICY = { allowedHosts: [], trustProxy: false };

function post(headers: Record<string, string>, token?: string): [Request, URLSearchParams] {
  const request = new Request("http://chat.example:8000/log_in/", {
    method: "POST",
    headers: { host: "chat.example:8000", ...headers },
  });
  return [request, new URLSearchParams(token === undefined ? {} : { [CSRF_FIELD]: token })];
}

Deno.test("a form whose token matches the cookie is accepted", () => {
  const secret = newCsrfSecret();
  const [request, form] = post(
    { cookie: `csrftoken=${secret}`, origin: "http://chat.example:8000" },
    maskToken(secret),
  );
  assertEquals(csrfFailure(request, form, POLICY), null);
});

Deno.test("the form token is masked afresh on every page, yet each one is accepted", () => {
  const secret = newCsrfSecret();
  const [a, b] = [maskToken(secret), maskToken(secret)];
  assertNotEquals(a, b);
  for (const token of [a, b]) {
    const [request, form] = post({ cookie: `csrftoken=${secret}` }, token);
    assertEquals(csrfFailure(request, form, POLICY), null);
  }
});

Deno.test("a missing cookie, a missing token and a wrong token are refused", () => {
  const secret = newCsrfSecret();
  assertEquals(csrfFailure(...post({}, maskToken(secret)), POLICY), "CSRF cookie not set.");
  assertEquals(
    csrfFailure(...post({ cookie: `csrftoken=${secret}` }), POLICY),
    "CSRF token missing.",
  );
  const other = maskToken(newCsrfSecret());
  assertEquals(
    csrfFailure(...post({ cookie: `csrftoken=${secret}` }, other), POLICY),
    "CSRF token incorrect.",
  );
  assertEquals(
    csrfFailure(...post({ cookie: `csrftoken=${secret}` }, "x".repeat(86)), POLICY),
    "CSRF token incorrect.",
  );
  assertEquals(
    csrfFailure(...post({ cookie: `csrftoken=${secret}` }, secret), POLICY),
    "CSRF token incorrect.",
    "the cookie value itself is not a form token",
  );
});

Deno.test("a POST from another site is refused even with a valid token", () => {
  const secret = newCsrfSecret();
  const cookie = `csrftoken=${secret}`;
  const [fromEvil, form] = post({ cookie, origin: "https://evil.example" }, maskToken(secret));
  assertEquals(
    csrfFailure(fromEvil, form, POLICY),
    'Origin checking failed - "https://evil.example" does not match any trusted origins.',
  );
  const [nullOrigin, form2] = post({ cookie, origin: "null" }, maskToken(secret));
  assertNotEquals(csrfFailure(nullOrigin, form2, POLICY), null);
  const [referer, form3] = post(
    { cookie, referer: "https://evil.example/page" },
    maskToken(secret),
  );
  assertEquals(
    csrfFailure(referer, form3, POLICY),
    'Referer checking failed - "https://evil.example" does not match any trusted origins.',
    "the Referer's origin only: its path or query may carry a token",
  );
  const [malformed, form4] = post({ cookie, referer: "not a url" }, maskToken(secret));
  assertEquals(
    csrfFailure(malformed, form4, POLICY),
    "Referer checking failed - Referer is malformed.",
  );
});

Deno.test("an allowed host may post; a same-host Referer is fine without Origin", () => {
  const secret = newCsrfSecret();
  const cookie = `csrftoken=${secret}`;
  const [request, form] = post({ cookie, origin: "https://www.example.org" }, maskToken(secret));
  assertEquals(csrfFailure(request, form, { ...POLICY, allowedHosts: [".example.org"] }), null);
  // ".example.org" is that domain and its subdomains: not another domain ending the same way.
  const [other, form1] = post({ cookie, origin: "https://evilexample.org" }, maskToken(secret));
  assertNotEquals(csrfFailure(other, form1, { ...POLICY, allowedHosts: [".example.org"] }), null);
  const [withReferer, form2] = post(
    { cookie, referer: "http://chat.example:8000/log_in/?next=/" },
    maskToken(secret),
  );
  assertEquals(csrfFailure(withReferer, form2, POLICY), null);
});

Deno.test("a request without a usable csrftoken cookie gets a fresh secret to set", () => {
  const fresh = csrfSecret(new Request("http://x/", { headers: { cookie: "csrftoken=short" } }));
  assertEquals(fresh.fresh, true);
  const secret = newCsrfSecret();
  const kept = csrfSecret(new Request("http://x/", { headers: { cookie: `csrftoken=${secret}` } }));
  assertEquals(kept, { secret, fresh: false });
});

Deno.test("an https site refuses a form posted from a plain-http page of its own host, as Django does", () => {
  const secret = newCsrfSecret();
  const cookie = `csrftoken=${secret}`;
  const secure = (headers: Record<string, string>): [Request, URLSearchParams] => [
    new Request("https://chat.example/log_in/", {
      method: "POST",
      headers: { host: "chat.example", cookie, ...headers },
    }),
    new URLSearchParams({ [CSRF_FIELD]: maskToken(secret) }),
  ];
  assertEquals(csrfFailure(...secure({ origin: "https://chat.example" }), POLICY), null);
  assertEquals(
    csrfFailure(...secure({ origin: "http://chat.example" }), POLICY),
    'Origin checking failed - "http://chat.example" does not match any trusted origins.',
  );
  assertEquals(
    csrfFailure(...secure({ referer: "http://chat.example/log_in/" }), POLICY),
    "Referer checking failed - Referer is insecure while host is secure.",
  );
  // Neither header over https: refused, as Django does (browsers send a Referer there).
  assertEquals(csrfFailure(...secure({}), POLICY), "Referer checking failed - no Referer.");
  // Behind a trusted proxy, the public scheme is the proxy's X-Forwarded-Proto.
  const [proxied, form] = post({
    cookie,
    origin: "http://chat.example:8000",
    "x-forwarded-proto": "https",
  }, maskToken(secret));
  assertNotEquals(csrfFailure(proxied, form, { ...POLICY, trustProxy: true }), null);
  assertEquals(csrfFailure(proxied, form, POLICY), null);
});

Deno.test("an allowed IPv6 host without a port allows its pages on any port, as a name does", () => {
  const secret = newCsrfSecret();
  const request = new Request("http://[::1]:8000/log_in/", {
    method: "POST",
    headers: { host: "[::1]:8000", cookie: `csrftoken=${secret}`, origin: "http://[::1]:8000" },
  });
  const form = new URLSearchParams({ [CSRF_FIELD]: maskToken(secret) });
  assertEquals(csrfFailure(request, form, { ...POLICY, allowedHosts: ["[::1]"] }), null);
  assertEquals(csrfFailure(request, form, { ...POLICY, allowedHosts: ["[::1]:8000"] }), null);
  assertNotEquals(csrfFailure(request, form, { ...POLICY, allowedHosts: ["[::1]:9000"] }), null);
});
