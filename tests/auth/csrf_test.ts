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
    "Origin checking failed - https://evil.example does not match any trusted origins.",
  );
  const [nullOrigin, form2] = post({ cookie, origin: "null" }, maskToken(secret));
  assertNotEquals(csrfFailure(nullOrigin, form2, POLICY), null);
  const [referer, form3] = post(
    { cookie, referer: "https://evil.example/page" },
    maskToken(secret),
  );
  assertEquals(
    csrfFailure(referer, form3, POLICY),
    "Referer checking failed - https://evil.example/page does not match any trusted origins.",
  );
});

Deno.test("an allowed host may post; a same-host Referer is fine without Origin", () => {
  const secret = newCsrfSecret();
  const cookie = `csrftoken=${secret}`;
  const [request, form] = post({ cookie, origin: "https://www.example.org" }, maskToken(secret));
  assertEquals(csrfFailure(request, form, { ...POLICY, allowedHosts: [".example.org"] }), null);
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
