/** What the chat delivery's test files share: joining a room, its route, its frames. */
import { assert } from "@std/assert";
import { Communicator } from "../../testing.ts";
import type { TestApp } from "../_support/test_app.ts";

/** A frame as the socket receives it. */
export type Frame = Record<string, unknown>;
/** A rate limit no test reaches. */
export const GENEROUS = { rateLimit: { perSecond: 100_000, burst: 100_000 } };

/** A socket of `app` in `room` with `query`, accepted. */
export async function join(app: TestApp, room: string, query = ""): Promise<Communicator> {
  const comm = new Communicator(app, `/ws/chat/${encodeURIComponent(room)}/${query}`);
  const { accepted, status } = await comm.connect();
  assert(accepted, `joining "${room}" was refused with ${status}`);
  return comm;
}

/** The chat's route. */
export const ROOM_ROUTE = "/ws/chat/:room/";
