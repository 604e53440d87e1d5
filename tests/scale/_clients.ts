/**
 * Clients of the scale-out tests: users who sign up and log in, presence sockets, and the
 * frames they wait for, against any server URL.
 */
import { assertEquals } from "@std/assert";
import { TestSocket } from "../_support/socket.ts";
import { WebClient } from "../_support/cookie_jar.ts";
import { RawWebSocket } from "../_support/raw_socket.ts";
import type { ServerProcess } from "./_process.ts";

/** The password every test user has. */
export const PASSWORD = "correct horse 9";
/** How long a scale test waits for one frame. */
export const WAIT = 10_000;

/** Signs `username` up and logs them in at `url`; the client then holds their session. */
export async function member(url: string, username: string): Promise<WebClient> {
  const client = new WebClient(url);
  await client.signUp(username, PASSWORD);
  await client.logIn(username, PASSWORD);
  return client;
}

/** A presence socket of `client`'s user on the server at `url`, past its state frame. */
export async function presenceSocket(url: string, client: WebClient): Promise<TestSocket> {
  const headers = { ...client.socketHeaders(), origin: url };
  const socket = await TestSocket.open(`${url.replace(/^http/, "ws")}/ws/presence/state/`, {
    headers,
  });
  assertEquals((await socket.nextJson(WAIT)).type, "presence.state");
  return socket;
}

/** Matches a presence diff in which `user` joins or leaves. */
export function diff(
  key: "joins" | "leaves",
  user: string,
): (frame: Record<string, unknown>) => boolean {
  return (frame) => frame.type === "presence.diff" && (frame[key] as string[]).includes(user);
}

/** The next JSON frame of a raw socket that matches, or a rejection after `timeoutMs`. */
export async function rawNextMatching(
  socket: RawWebSocket,
  predicate: (frame: Record<string, unknown>) => boolean,
  timeoutMs = WAIT,
): Promise<Record<string, unknown>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`No matching frame within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  const search = (async () => {
    while (true) {
      const frame = JSON.parse(await socket.nextText());
      if (predicate(frame)) return frame;
    }
  })();
  try {
    return await Promise.race([search, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A raw socket to `path` on the Worker named `worker` (or on any other with `not`). */
export async function onWorker(
  server: ServerProcess,
  path: string,
  pick: (worker: string) => boolean,
): Promise<{ socket: RawWebSocket; worker: string }> {
  // Linux picks the Worker by a hash of the client's port: 40 tries all on one is ~1e-12.
  for (let i = 0; i < 40; i++) {
    const socket = await RawWebSocket.open(server.wsUrl(path));
    const worker = socket.headers.get("x-served-by") ?? "";
    if (pick(worker)) return { socket, worker };
    socket.close();
  }
  throw new Error("Every connection landed on the same Worker");
}

/** Sends `count` chat messages, then waits for its own copy of the last one. */
export async function rawSendAll(
  socket: RawWebSocket,
  count: number,
  label: string,
): Promise<void> {
  for (let n = 1; n <= count; n++) await socket.send(JSON.stringify({ message: `${label} ${n}` }));
  await rawNextMatching(socket, (f) => f.message === `${label} ${count}`);
}
