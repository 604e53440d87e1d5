import { assertEquals, assertRejects } from "@std/assert";
import { BodyCutShortError, BodyNotUtf8Error, readBodyText } from "../../server/request_body.ts";
import { createApp, page } from "../../mod.ts";
import { createTestServices } from "../../testing.ts";
import { CapturedLog } from "../_support/captured_log.ts";

function post(body: BodyInit | null, headers: HeadersInit = {}): Request {
  return new Request("http://localhost/", { method: "POST", body, headers });
}

/** A body that arrives in pieces, as from a socket, and says when it was cancelled. */
function streamed(
  pieces: string[],
): { body: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const piece = pieces.shift();
      if (piece === undefined) controller.close();
      else controller.enqueue(new TextEncoder().encode(piece));
    },
    cancel() {
      cancelled = true;
    },
  });
  return { body, cancelled: () => cancelled };
}

Deno.test("a body within the limit is read whole, UTF-8 across chunk boundaries", async () => {
  const bytes = new TextEncoder().encode("café=1");
  const split = [bytes.slice(0, 4), bytes.slice(4)]; // inside the two bytes of "é"
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of split) controller.enqueue(part);
      controller.close();
    },
  });
  assertEquals(await readBodyText(post(body), 64), "café=1");
  assertEquals(await readBodyText(post("x".repeat(64)), 64), "x".repeat(64));
});

Deno.test("bytes that are not UTF-8 read as U+FFFD, or are refused when the reader asks for UTF-8", async () => {
  const latin1 = new Uint8Array([0x63, 0x61, 0x66, 0xe9]); // "café" in Latin-1
  assertEquals(await readBodyText(post(latin1), 64), "caf\ufffd");
  await assertRejects(
    () => readBodyText(post(latin1), 64, { fatal: true }),
    BodyNotUtf8Error,
    "The body is not valid UTF-8",
  );
  assertEquals(await readBodyText(post("café"), 64, { fatal: true }), "café");
});

Deno.test("a request without a body reads as empty text", async () => {
  assertEquals(await readBodyText(new Request("http://localhost/"), 64), "");
  assertEquals(await readBodyText(post(null), 64), "");
});

Deno.test("a body that declares more than the limit is refused before it is read", async () => {
  // A client that declares a huge body and trickles it must not hold the request: not one
  // piece is asked for (no queue ahead of the reader: `highWaterMark: 0`).
  let pulls = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      controller.enqueue(new TextEncoder().encode("small"));
      controller.close();
    },
  }, { highWaterMark: 0 });
  const request = post(body, { "content-length": "65" });
  assertEquals(await readBodyText(request, 64), null);
  assertEquals(pulls, 0);
  assertEquals(request.bodyUsed, false);
});

Deno.test("a body that grows past the limit is refused and the rest is not read", async () => {
  const { body, cancelled } = streamed(["x".repeat(40), "x".repeat(40), "never read"]);
  assertEquals(await readBodyText(post(body), 64), null);
  assertEquals(cancelled(), true);
});

Deno.test("a streamed body (no Content-Length) is refused one byte over the limit, taken at it", async () => {
  const streamed = (text: string) =>
    new Request("http://localhost/_send/", {
      method: "POST",
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      }),
    });
  assertEquals(await readBodyText(streamed("x".repeat(11)), 10), null);
  assertEquals(await readBodyText(streamed("x".repeat(10)), 10), "x".repeat(10));
});

Deno.test("a body that stops mid-way, or sends nothing for too long, is the client's failure", async () => {
  const failing = new Request("http://localhost/log_in/", {
    method: "POST",
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("username=a"));
        controller.error(new Error("unexpected EOF while reading HTTP/1 body"));
      },
    }),
  });
  await assertRejects(() => readBodyText(failing, 1000), BodyCutShortError, "cut short");
  const stalled = new Request("http://localhost/log_in/", {
    method: "POST",
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("username=a")); // then nothing, for good
      },
    }),
  });
  await assertRejects(
    () => readBodyText(stalled, 1000, { idleMs: 50 }),
    BodyCutShortError,
    "sent nothing for 0.05 s",
  );
});

Deno.test("a page whose request body was cut short answers 400 with one line, no error logged", async () => {
  using captured = new CapturedLog();
  await using services = await createTestServices({ logLevel: "info" });
  const app = createApp({
    routes: [page("POST", "/upload/", async (request) => {
      await readBodyText(request, 1000);
      return new Response("stored");
    })],
    services,
  });
  const request = new Request("http://localhost/upload/", {
    method: "POST",
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.error(new Error("connection reset"));
      },
    }),
  });
  const answer = await app.handle(request);
  await answer.body?.cancel();
  assertEquals(answer.status, 400);
  await captured.waitFor(/^HTTP POST \/upload\/ 400 .*\(the request body was cut short: /);
  assertEquals(captured.lines.filter((line) => / ERROR /.test(line)), []);
  await app.close();
});

Deno.test("a page that asks for a UTF-8 body and gets Latin-1 answers 400 with one line, no error logged", async () => {
  using captured = new CapturedLog();
  await using services = await createTestServices({ logLevel: "info" });
  const app = createApp({
    routes: [page("POST", "/notes/", async (request) => {
      const text = await readBodyText(request, 1000, { fatal: true });
      return new Response(`stored ${text}`);
    })],
    services,
  });
  const latin1 = new Uint8Array([0x63, 0x61, 0x66, 0xe9]);
  const answer = await app.handle(
    new Request("http://localhost/notes/", { method: "POST", body: latin1 }),
  );
  await answer.body?.cancel();
  assertEquals(answer.status, 400);
  await captured.waitFor(/^HTTP POST \/notes\/ 400 .*\(The body is not valid UTF-8\)/);
  assertEquals(captured.lines.filter((line) => / ERROR /.test(line)), []);
  await app.close();
});
