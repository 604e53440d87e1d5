/**
 * Joining a binding's group (a session's, a token's): the binding's watch hears whether the
 * handshake's second read of the record could say it is live, so a change that read could not
 * see is not left to a stamp the watch may already hold.
 */
import { assertEquals } from "@std/assert";
import {
  type Binding,
  type BindingState,
  joinBindingGroup,
  recheckBinding,
} from "../../server/_bound_socket.ts";
import type { WebSocketConnection } from "../../server/_connection.ts";

function connection(): WebSocketConnection & { aborted: number[] } {
  const aborted: number[] = [];
  return {
    aborted,
    scope: { path: "/ws/echo/" },
    groupAdd: () => Promise.resolve(),
    abort: (code: number) => {
      aborted.push(code);
      return Promise.resolve();
    },
  } as unknown as WebSocketConnection & { aborted: number[] };
}

function binding(read: () => Promise<BindingState>): Binding {
  return {
    kind: "session",
    group: "sessions.x",
    read,
    endedMeanwhile: [403, "login_required", "Logged out"],
  };
}

/** Joins with a watch that records what it is told. */
async function join(read: () => Promise<BindingState>) {
  const told: string[] = [];
  const conn = connection();
  const refusal = await joinBindingGroup(conn, binding(read), {
    joined: () => void told.push("joined"),
    unchecked: () => void told.push("unchecked"),
  });
  return { refusal, told, aborted: conn.aborted };
}

Deno.test("a record read again as live: the socket joins, and its watch trusts its stamp", async () => {
  const { refusal, told } = await join(() => Promise.resolve("live"));
  assertEquals(refusal, null);
  assertEquals(told, ["joined"]);
});

Deno.test("a record gone by the second read refuses the handshake", async () => {
  const { refusal, told, aborted } = await join(() => Promise.resolve("ended"));
  assertEquals(refusal, [403, "login_required", "Logged out"]);
  assertEquals(told, ["joined"]);
  assertEquals(aborted, [4001]);
});

Deno.test("a session renewed by the second read refuses the handshake, its consumer told 4002", async () => {
  const { refusal, aborted } = await join(() => Promise.resolve("renewed"));
  assertEquals(refusal, [403, "login_required", "Session renewed while the socket connected"]);
  assertEquals(aborted, [4002], "the consumer's disconnect hears a renewal, not a log-out");
});

Deno.test("a second read that failed lets the socket in, and tells its watch to read every binding again", async () => {
  const { refusal, told } = await join(() => Promise.reject(new Error("store down")));
  assertEquals(
    refusal,
    null,
    "the layer's close still reaches it; the store was read a moment ago",
  );
  assertEquals(told, ["joined", "unchecked"]);
});

/** Reads the binding again as after a layer gap; resolves with how the socket was closed. */
async function recheck(state: BindingState): Promise<[number, string] | null> {
  let closedWith: [number, string] | null = null;
  const conn = {
    closed: false,
    scope: { path: "/ws/echo/" },
    close: (code: number, reason: string) => void (closedWith = [code, reason]),
  } as unknown as WebSocketConnection;
  await recheckBinding(conn, binding(() => Promise.resolve(state)), "Logged out");
  return closedWith;
}

Deno.test("after a layer gap, a socket's binding read again closes it as its end would have", async () => {
  assertEquals(await recheck("live"), null);
  assertEquals(await recheck("ended"), [4001, "Logged out"]);
  assertEquals(await recheck("renewed"), [4002, "Session renewed"], "a renewal's close was lost");
});
