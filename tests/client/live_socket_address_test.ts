/** The live socket's address check: attempts that fail before they open are asked about. */
import { assert, assertEquals } from "@std/assert";
import { drop, open } from "./_fake_socket.ts";
import { client } from "./_live_socket_support.ts";

// The address question of a socket whose attempts keep failing before they open: each call
// answers with the next of `answers` (a Response, or an Error to throw as a failed fetch).
function probing(answers: (Response | Error)[]) {
  const asked: { url: string; init: RequestInit | undefined }[] = [];
  const probe = ((url: string, init?: RequestInit) => {
    asked.push({ url, init });
    const answer = answers.shift() ?? new Error("no more answers");
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  }) as typeof fetch;
  return { probe, asked };
}

async function withConsoleError<T>(run: (shown: unknown[][]) => Promise<T>): Promise<T> {
  const shown: unknown[][] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void shown.push(args);
  try {
    return await run(shown);
  } finally {
    console.error = consoleError;
  }
}

// Until `live` has said "closed", or `sockets` has a new attempt waiting.
async function closedOrRetried(states: string[], sockets: { waiting: number }) {
  while (!states.at(-1)?.startsWith("closed") && sockets.waiting === 0) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

Deno.test("a wrong address stops after two failed attempts, and the state says there is no such route", async () => {
  await withConsoleError(async (shown) => {
    const { probe, asked } = probing([new Response("Not Found", { status: 404 })]);
    const { live, sockets, states, window } = client({ probe });
    live.start();
    drop(await sockets.next(), 1006);
    assertEquals(asked.length, 0, "one failure asks nothing: a server may be restarting");
    drop(await sockets.next(), 1006);
    await closedOrRetried(states, sockets);
    assertEquals(asked.map((question) => question.url), ["http://chat.test/ws/"]);
    assertEquals(asked[0].init?.redirect, "manual");
    assertEquals(states.at(-1), "closed: No WebSocket route at /ws/ (404 Not Found)");
    // For good: neither the backoff's timer nor the page coming back online opens another.
    await new Promise((resolve) => setTimeout(resolve, 30));
    window.dispatchEvent(new Event("online"));
    assertEquals(sockets.waiting, 0);
    assertEquals(shown.length, 1);
    assert(String(shown[0][0]).includes("No WebSocket route at /ws/"), String(shown[0][0]));
  });
});

Deno.test("an address that redirects (a trailing slash missing) stops, and the state says so", async () => {
  await withConsoleError(async () => {
    const { probe, asked } = probing([
      // Deno's fetch sees where it goes, query and all: the state names its path alone.
      new Response(null, { status: 301, headers: { location: "/ws/chat/lobby/?token=SECRET" } }),
    ]);
    const { live, sockets, states } = client({ probe }, "wss://chat.test/ws/chat/lobby?since=4");
    live.start();
    drop(await sockets.next(), 1006);
    drop(await sockets.next(), 1006);
    await closedOrRetried(states, sockets);
    assertEquals(asked[0].url, "https://chat.test/ws/chat/lobby?since=4");
    assertEquals(
      states.at(-1),
      "closed: /ws/chat/lobby redirects to /ws/chat/lobby/, which a WebSocket does not follow " +
        "(a trailing slash missing?)",
    );
  });
});

Deno.test("an address that is a route, or a server that does not answer, keeps the attempts going", async () => {
  const upgradeRequired = new Response("Not a WebSocket upgrade", { status: 426 });
  for (const answer of [upgradeRequired, new TypeError("Failed to fetch")]) {
    const { probe, asked } = probing([answer]);
    const { live, sockets, states } = client({ probe });
    live.start();
    drop(await sockets.next(), 1006);
    drop(await sockets.next(), 1006);
    const third = await sockets.next();
    assertEquals(asked.length, 1);
    open(third);
    assertEquals(states.at(-1), "open: Connected");
    live.stop();
  }
});

Deno.test("an address answered is asked again only after twice as many failed attempts, one nobody answered at the next", async () => {
  const upgradeRequired = () => new Response("Not a WebSocket upgrade", { status: 426 });
  // A socket refused for now (a connection cap): every handshake refused, every GET a 426.
  const answered = probing([upgradeRequired(), upgradeRequired(), upgradeRequired()]);
  const refusedForNow = client({ probe: answered.probe });
  refusedForNow.live.start();
  for (let attempt = 0; attempt < 7; attempt++) {
    drop(await refusedForNow.sockets.next(), 1006);
    await new Promise((resolve) => setTimeout(resolve, 1)); // the question's answer
  }
  const opened = await refusedForNow.sockets.next();
  open(opened);
  assertEquals(answered.asked.length, 2, "asked at the 2nd failure and the 4th, not at each");
  // An attempt opened: the next streak of failures asks again at its second.
  drop(opened, 1006);
  for (let attempt = 0; attempt < 2; attempt++) drop(await refusedForNow.sockets.next(), 1006);
  await refusedForNow.sockets.next();
  assertEquals(answered.asked.length, 3);
  refusedForNow.live.stop();
  // The server down: nothing answered, so it is asked again while the attempts fail.
  const down = probing([new TypeError("Failed to fetch"), new TypeError("Failed to fetch")]);
  const away = client({ probe: down.probe });
  away.live.start();
  for (let attempt = 0; attempt < 3; attempt++) drop(await away.sockets.next(), 1006);
  await away.sockets.next();
  assertEquals(down.asked.length, 2);
  away.live.stop();
});

Deno.test("an attempt that opens while the address is asked about keeps the socket, whatever the answer", async () => {
  let answer = (_: Response) => {};
  const probe = (() => new Promise<Response>((resolve) => answer = resolve)) as typeof fetch;
  const { live, sockets, states } = client({ probe });
  live.start();
  drop(await sockets.next(), 1006);
  drop(await sockets.next(), 1006);
  open(await sockets.next());
  answer(new Response("Not Found", { status: 404 }));
  await new Promise((resolve) => setTimeout(resolve, 5));
  assertEquals(states.at(-1), "open: Connected");
  assertEquals(live.isOpen, true);
  live.stop();
});

Deno.test("stop() while the address is asked about aborts the question", async () => {
  let signal: AbortSignal | undefined;
  const probe = ((_: string, init?: RequestInit) => {
    signal = init?.signal ?? undefined;
    return new Promise<Response>((_, reject) => {
      signal?.addEventListener("abort", () => reject(signal?.reason));
    });
  }) as typeof fetch;
  const { live, sockets } = client({ probe });
  live.start();
  drop(await sockets.next(), 1006);
  drop(await sockets.next(), 1006);
  assert(signal !== undefined && !signal.aborted);
  live.stop();
  assertEquals(signal?.aborted, true);
});

// The server's answer to a GET of a route whose handshake it refuses (see websocket_route.ts).
const refusedGet = (why: string, reason: string) =>
  new Response(`${reason}\n`, { status: 403, headers: { "channels-refused": why } });

Deno.test("a handshake the server refuses for good stops the attempts, and the state gives its reason", async () => {
  await withConsoleError(async (shown) => {
    const reason = "Login required: log in to open this connection";
    const { probe, asked } = probing([refusedGet("login_required", reason)]);
    const { live, sockets, states, window } = client({ probe });
    live.start();
    drop(await sockets.next(), 1006);
    drop(await sockets.next(), 1006);
    await closedOrRetried(states, sockets);
    assertEquals(asked.length, 1);
    assertEquals(states.at(-1), `closed: ${reason}`);
    window.dispatchEvent(new Event("online"));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assertEquals(sockets.waiting, 0, "for good: no attempt after it");
    assertEquals(shown.length, 1);
    assert(String(shown[0][0]).includes("refuses this connection (login_required)"));
  });
});

Deno.test("a socket a refusal stopped says why in one word, already when it says 'closed'", async () => {
  await withConsoleError(async () => {
    const { probe } = probing([refusedGet("login_required", "Login required")]);
    const refusedWhenClosed: (string | null)[] = [];
    const { live, sockets, states } = client({
      probe,
      onState(state, text) {
        states.push(`${state}: ${text}`);
        if (state === "closed") refusedWhenClosed.push(live.refused);
      },
    });
    assertEquals(live.refused, null);
    live.start();
    drop(await sockets.next(), 1006);
    drop(await sockets.next(), 1006);
    await closedOrRetried(states, sockets);
    assertEquals([live.refused, refusedWhenClosed], ["login_required", ["login_required"]]);
  });
  // Stopped by the page, or still trying: no refusal.
  const stopped = client();
  stopped.live.start();
  stopped.live.stop();
  assertEquals(stopped.live.refused, null);
});

Deno.test("a 403 without the server's refusal header (a proxy's) keeps the attempts going", async () => {
  const { probe } = probing([new Response("<h1>Forbidden</h1>", { status: 403 })]);
  const { live, sockets, states } = client({ probe });
  live.start();
  drop(await sockets.next(), 1006);
  drop(await sockets.next(), 1006);
  open(await sockets.next());
  assertEquals(states.at(-1), "open: Connected");
  live.stop();
});

Deno.test("with a URL function, a refusal stops only an address it gives again; a fresh one is tried", async () => {
  await withConsoleError(async () => {
    const reason = "Token expired: log in again";
    const { probe, asked } = probing([refusedGet("token", reason), refusedGet("token", reason)]);
    let token = "old";
    const { live, sockets, states } = client({ probe }, () => `ws://chat.test/ws/?token=${token}`);
    live.start();
    drop(await sockets.next(), 1006);
    token = "fresh"; // the app got a new token meanwhile: the next address differs
    const second = await sockets.next();
    assertEquals(second.url, "ws://chat.test/ws/?token=fresh");
    drop(second, 1006);
    // Asked about the fresh address, refused: but the function gives another one again.
    token = "fresher";
    const third = await sockets.next();
    assertEquals(asked.map((question) => question.url), ["http://chat.test/ws/?token=fresh"]);
    assert(!states.at(-1)?.startsWith("closed"), states.at(-1));
    // The function now gives the same address each time: its refusal stands, two failures on.
    drop(third, 1006);
    drop(await sockets.next(), 1006);
    await closedOrRetried(states, sockets);
    assertEquals(asked.length, 2);
    assertEquals(states.at(-1), `closed: ${reason}`);
  });
});
