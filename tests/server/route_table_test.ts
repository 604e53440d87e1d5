/**
 * Route-table mistakes fail where they are written, with what to write instead, rather than
 * leaving a route that never answers.
 */
import { assertEquals, assertThrows } from "@std/assert";
import { type AppRoute, type Consumer, createApp, page, socket } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";

const hello = () => new Response("hello");
const silent: Consumer = () => ({});

Deno.test("a method in lower case, or one HTTP does not have, is refused at the route", () => {
  assertThrows(() => page("get", "/a/", hello), TypeError, 'write the method in capitals, "GET"');
  assertThrows(() => page("GTE", "/a/", hello), TypeError, 'unknown method "GTE"');
});

Deno.test("a path without a leading slash, or with Django's <int:id> or a {id}, is refused", () => {
  assertThrows(() => page("GET", "no-slash/", hello), TypeError, 'a path starts with "/"');
  assertThrows(() => page("GET", "", hello), TypeError, 'a path starts with "/"');
  assertThrows(() => socket("ws/x/", silent), TypeError, 'a path starts with "/"');
  assertThrows(
    () => page("GET", "/poll/<int:id>/", hello),
    TypeError,
    'write a parameter as ":id" (URLPattern), not "<int:id>"',
  );
  assertThrows(
    () => socket("/ws/c/{id}/", silent),
    TypeError,
    'write a parameter as ":id" (URLPattern), not "{id}"',
  );
  // A URLPattern group, or a quantifier in a parameter's regex, is no parameter written otherwise.
  page("GET", "/books{/:id}?/", hello);
  page("GET", "/archive/:year(\\d{4})/", hello);
  socket("/ws/lang/:code([a-z]{2})/", silent);
});

Deno.test("a parameter name with a hyphen, which URLPattern ends at the hyphen, is refused with what to write", () => {
  assertThrows(
    () => socket("/ws/poll/:poll-id/", silent),
    TypeError,
    '":poll-id" is the parameter ":poll" followed by the text "-id"',
  );
  assertThrows(() => page("GET", "/p/:poll-id/", hello), TypeError, 'write ":poll_id"');
  // A dot too, in a socket's path; a page's `:name.json` is a file's extension.
  assertThrows(
    () => socket("/ws/poll/:poll.id/", silent),
    TypeError,
    '":poll.id" is the parameter ":poll" followed by the text ".id"',
  );
  const file = page("GET", "/files/:name.json", hello);
  assertEquals(
    new URLPattern({ pathname: file.path }).exec({ pathname: "/files/report.json" })?.pathname
      .groups,
    { name: "report" },
  );
  // A hyphen between two parameters, escaped text, or after a parameter's regex: as written.
  const dated = page("GET", "/archive/:year-:month/", hello);
  assertEquals(
    new URLPattern({ pathname: dated.path }).exec({ pathname: "/archive/2026-12/" })?.pathname
      .groups,
    { year: "2026", month: "12" },
  );
  page("GET", "/p/:poll\\-id/", hello);
  page("GET", "/p/:poll(\\d+)-id/", hello);
});

Deno.test("two pages, or two sockets, for one method and path are refused by createApp", async () => {
  await using services = await createTestServices();
  const twice = (routes: AppRoute[]) => () => createApp({ routes, services });
  assertThrows(
    twice([page("GET", "/dup/", hello), page("GET", "/dup/", hello)]),
    TypeError,
    'Route "/dup/": a second page for GET',
  );
  assertThrows(
    twice([socket("/ws/dup/", silent), socket("/ws/dup/", silent)]),
    TypeError,
    'Route "/ws/dup/": a second WebSocket route for GET',
  );
  // Parameters differ only in name: the same paths match, so the second could never answer.
  assertThrows(
    twice([socket("/ws/b/:x/", silent), socket("/ws/b/:y/", silent)]),
    TypeError,
    'Route "/ws/b/:y/": a second WebSocket route for GET',
  );
  // Two parameters and a literal in other places are two routes.
  createApp({
    routes: [page("GET", "/b/:x/", hello), page("GET", "/b/:x/edit/", hello)],
    services,
  });
  // A row made by hand goes through the same checks.
  const byHand = { method: "get", path: "/x/", handler: { kind: "http", handle: hello } } as const;
  assertThrows(twice([byHand]), TypeError, "capitals");
});

Deno.test("a page and a socket may share a path, and one path may take several methods", async () => {
  await using services = await createTestServices();
  const app = createApp({
    routes: [
      page("GET", "/both/", hello),
      socket("/both/", silent),
      page("POST", "/both/", () => new Response("posted")),
    ],
    services,
  });
  try {
    const got = await app.handle(new Request("http://localhost/both/"));
    assertEquals(await got.text(), "hello");
    const posted = await app.handle(new Request("http://localhost/both/", { method: "POST" }));
    assertEquals(await posted.text(), "posted");
  } finally {
    await app.close();
  }
});
