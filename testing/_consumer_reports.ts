/**
 * What a communicator tells a test of its consumer (`server/_consumer_failures.ts`): what it
 * raised in a `connect` answered to no one (the client had left), before the socket closed
 * (which closed it with 1011), and after (its `disconnect` hook, or a hook still running then),
 * each told once, as Channels' communicator raises what the app raised; when a `receive` waited
 * in vain, the first event it had no handler for, its misnamed hooks and its stream followers
 * never entered; and, for a handshake that was refused, why, in a few words.
 */
import {
  consumerFailures,
  handFailuresOver,
  heldBeforeEntry,
  lateFailures,
  unhandledEvents,
} from "../server/_consumer_failures.ts";
import { misnamedHooks } from "../server/_hook_names.ts";
import { describeThrown } from "../telemetry/log.ts";
import { NoAnswerInTimeError } from "../storage/with_timeout.ts";

/** An error that says the consumer failed `when`, with its own error as the `cause`. */
export function consumerFailed(when: string, error: unknown): Error {
  const what = error instanceof Error
    ? `${error.name}: ${error.message}`
    : `it threw ${describeThrown(error)}`;
  return new Error(`The consumer failed (${when}): ${what}`, { cause: error });
}

/** The reports of the consumer of one socket. */
export class ConsumerReports {
  #socket: object;
  /** The failure before the close was raised (by `receive`, `waitForClose` or `disconnect`). */
  #beforeTold = false;
  /** What `connect` raised with no `connect()` to reject: the client had left, or gave up. */
  #connectFailure: Error | null = null;

  constructor(socket: object) {
    this.#socket = socket;
  }

  /** What the consumer raised before the socket closed with `closeCode`, or null; told. */
  failedBefore(closeCode: number | null): Error | null {
    // `has`: a consumer may throw `undefined`, and that is a failure too.
    if (!consumerFailures.has(this.#socket)) return null;
    const failure = consumerFailures.get(this.#socket);
    this.#beforeTold = true;
    // Told here, so not again after the close.
    if (lateFailures.get(this.#socket) === failure) lateFailures.delete(this.#socket);
    return consumerFailed(`closed with ${closeCode}`, failure);
  }

  /**
   * Takes what the consumer raised for a handshake that was not upgraded (its client left: the
   * `disconnect(1006)` that undid `connect`), kept by its request, to be told as the socket's.
   */
  adoptUnupgraded(request: Request): void {
    handFailuresOver(request, this.#socket);
  }

  /** Keeps `failure`, of the consumer's `connect`, for `raiseUntold`. */
  untoldConnectFailure(failure: Error): void {
    this.#connectFailure = failure;
  }

  /**
   * Rejects with what the consumer raised and was not told yet: in `connect` first, then before
   * the close, then after it. Once each: a test that catches it and waits again is not told
   * twice.
   */
  async raiseUntold(closeCode: number | null): Promise<void> {
    await unawaitedCallsJudged();
    const inConnect = this.#connectFailure;
    this.#connectFailure = null;
    if (inConnect !== null) throw inConnect;
    if (!this.#beforeTold) {
      const before = this.failedBefore(closeCode);
      if (before !== null) throw before;
    }
    if (!lateFailures.has(this.#socket)) return;
    const failure = lateFailures.get(this.#socket);
    lateFailures.delete(this.#socket);
    throw consumerFailed("after the close", failure);
  }

  /** What is said of the consumer's hooks under names never called (`receive_json`), if any. */
  get misnamed(): string | undefined {
    return misnamedHooks.get(this.#socket);
  }

  /**
   * The error of a `receive` that waited `timeoutMs` in vain, with what may explain it: the
   * first event the consumer had no handler for, hooks under names never called
   * (`receive_json`), and stream followers whose `enter()` never came (their events wait for it).
   */
  noFrameWithin(timeoutMs: number): NoAnswerInTimeError {
    const unhandled = unhandledEvents.get(this.#socket);
    const misnamed = this.misnamed;
    const unentered = [...heldBeforeEntry.get(this.#socket) ?? []]
      .map((follower) => follower.unenteredGroup).filter((group) => group !== null);
    return new NoAnswerInTimeError(
      `No frame within ${timeoutMs} ms` +
        (unhandled === undefined ? "" : ` (the consumer had an event it ignored: ${unhandled})`) +
        (misnamed === undefined ? "" : ` (${misnamed})`) +
        unentered.map((group) =>
          ` (events of the group ${JSON.stringify(group)} wait for its StreamFollower's ` +
          "enter(), never called)"
        ).join(""),
    );
  }
}

// Deno's own timer, taken as this module loads: a test that fakes the clock (`FakeTime` of
// `@std/testing/time` replaces `setTimeout`, and runs nothing until the test ticks) would
// otherwise leave every `disconnect()` and `waitForClose()` waiting for good.
const nextTask = globalThis.setTimeout;

/**
 * Resolves once Deno has dispatched the `unhandledrejection` events of the rejections seen so
 * far: a call the consumer did not await (`conn.groupAdd(name)` without `await`) fails its socket
 * through that event (`server/_unawaited.ts`), which Deno dispatches after the task that saw the
 * rejection, where a test's `await comm.disconnect()` runs to its end within one task. No event
 * tells that the dispatch is over (a rejection handled in time has none): a task later, it is.
 */
function unawaitedCallsJudged(): Promise<void> {
  return new Promise((resolve) => nextTask(resolve, 0));
}

/**
 * A refused handshake's answer in a few words: where a redirect points (a path without its
 * trailing slash is redirected to the one with it), else its text, an HTML page's without tags.
 */
export function refusalShown(response: Response, body: string, url: URL): string {
  const location = response.headers.get("location");
  if (location !== null) {
    const slash = new URL(location, url).pathname === `${url.pathname}/`;
    return `redirected to ${location}${slash ? ": the route's path ends with a slash" : ""}`;
  }
  const text = /^\s*</.test(body) ? body.replace(/<[^>]*>/g, " ") : body;
  const words = text.replace(/\s+/g, " ").trim();
  return words.length > 200 ? `${words.slice(0, 200)}…` : words;
}
