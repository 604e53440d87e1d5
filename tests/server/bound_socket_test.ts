/**
 * Joining a binding's group (a session's, a token's): the binding's watch hears whether the
 * handshake's second read of the record could say it is live, so a change that read could not
 * see is not left to a stamp the watch may already hold.
 */
import { assertEquals } from "@std/assert";
import { type Binding, joinBindingGroup } from "../../server/_bound_socket.ts";
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

function binding(isLive: () => Promise<boolean>): Binding {
  return {
    kind: "session",
    group: "sessions.x",
    isLive,
    endedMeanwhile: [403, "login_required", "Logged out"],
  };
}

/** Joins with a watch that records what it is told. */
async function join(isLive: () => Promise<boolean>) {
  const told: string[] = [];
  const conn = connection();
  const refusal = await joinBindingGroup(conn, binding(isLive), {
    joined: () => void told.push("joined"),
    unchecked: () => void told.push("unchecked"),
  });
  return { refusal, told, aborted: conn.aborted };
}

Deno.test("a record read again as live: the socket joins, and its watch trusts its stamp", async () => {
  const { refusal, told } = await join(() => Promise.resolve(true));
  assertEquals(refusal, null);
  assertEquals(told, ["joined"]);
});

Deno.test("a record gone by the second read refuses the handshake", async () => {
  const { refusal, told, aborted } = await join(() => Promise.resolve(false));
  assertEquals(refusal, [403, "login_required", "Logged out"]);
  assertEquals(told, ["joined"]);
  assertEquals(aborted, [4001]);
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
