/**
 * Consumers under test without a server or a port, like Django Channels'
 * `WebsocketCommunicator`. The socket is a fake passed through the app's `upgrade` seam; the
 * handshake still goes through the real router, Origin check, `identify` and `connect`.
 *
 * @example
 * ```ts
 * import { type Consumer, createApp, socket } from "@channels/deno";
 * import { Communicator, createTestServices, testUpgrade } from "@channels/deno/testing";
 * import { assert, assertEquals } from "@std/assert";
 *
 * const echo: Consumer = (conn) => ({ receive: (text) => conn.send(`You said: ${text}`) });
 * await using services = await createTestServices();
 * const app = createApp({ routes: [socket("/ws/echo/", echo)], services, upgrade: testUpgrade });
 * const comm = new Communicator(app, "/ws/echo/");
 * assert((await comm.connect()).accepted);
 * comm.send("hi");
 * assertEquals(await comm.receive(), "You said: hi");
 * await comm.disconnect();
 * ```
 *
 * A consumer that is not in the route table is tested with services instead of an app:
 * `new Communicator({ consumer, services, route: "/ws/t/:id/" }, "/ws/t/1/")`.
 */
import type { App } from "../server/app.ts";
import { LiveConnections } from "../server/live_connections.ts";
import { consumerRefusals } from "../server/_consumer_failures.ts";
import { consumerFailed, ConsumerReports, refusalShown } from "./_consumer_reports.ts";
import { NoAnswerInTimeError, withTimeout } from "../storage/with_timeout.ts";
import { FakeSocket } from "./fake_socket.ts";
import { Arrivals, jsonOf } from "./_arrivals.ts";
import { settlesWithin } from "../server/drain.ts";
import { withdrawSocket } from "./test_upgrade.ts";
import { reachedDenoUpgrade } from "../server/_in_process_handshakes.ts";
import { handshakeRequest } from "./_handshake_request.ts";
import { clientInfo, consumerHandler, type ConsumerTarget } from "./_consumer_target.ts";
import type { User } from "../auth/identify.ts";
export { FakeSocket } from "./fake_socket.ts";
export { testUpgrade } from "./test_upgrade.ts";
export type { ConsumerTarget } from "./_consumer_target.ts";

/** How long `receive` waits by default, in milliseconds. */
export const RECEIVE_TIMEOUT_MS = 2000;
/**
 * How long `connect` and `disconnect` wait for the consumer's hooks by default, in
 * milliseconds: a hook that never finishes fails the test with a message, as Channels'
 * `connect(timeout=)` raises, instead of leaving it pending.
 */
export const HOOK_TIMEOUT_MS = 10_000;

/** What {@linkcode Communicator.connect} tells of the handshake. */
export interface ConnectResult {
  /** True when the socket was accepted (101). */
  accepted: boolean;
  /** The handshake's HTTP status: 101, or the refusal's (403 when the consumer said no). */
  status: number;
  /** Why it was refused, as the server answered (absent when accepted). */
  reason?: string;
  /**
   * The close code the consumer refused with: `conn.close(4003)` or a `ProtocolError` with a
   * code in `connect`. Absent for a plain `return false` and for refusals before the consumer.
   */
  code?: number;
}

/** Options of a {@linkcode Communicator}. */
export interface CommunicatorOptions {
  /** Extra handshake headers, e.g. `Origin` or `Cookie`. */
  headers?: HeadersInit;
  /** The user (only with a {@linkcode ConsumerTarget}: an app identifies users itself). */
  user?: User;
  /** The subprotocols the client offers, as Channels' communicator's `subprotocols`. */
  subprotocols?: string[];
}

/** The client end of one in-process WebSocket. */
export class Communicator {
  /** The server end, e.g. to raise its `bufferedAmount`. */
  readonly socket: FakeSocket;
  /** Resolves with the close code and reason, whichever end closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #url: URL;
  #headers: Headers;
  #handle: (request: Request) => Promise<Response>;
  #live: LiveConnections;
  #arrivals = new Arrivals();
  #closeCode: number | null = null;
  /** The test has seen the close (`waitForClose`, `disconnect`, a `receive` that threw). */
  #closeSeen = false;
  /** What the consumer raised, and the events it ignored, told to the test once each. */
  #reports: ConsumerReports;
  #protocol = "";
  #connecting = false;
  #open = false;
  /** Aborted by a hang-up during the handshake: the server sees its client left, as Deno's would. */
  #leaving = new AbortController();
  /** The handshake under way (settled, never rejecting: `connect` tells its failure). */
  #handshake: Promise<unknown> = Promise.resolve();
  /** `connect` gave up on a handshake its consumer's `connect` hook held: the test was told. */
  #connectTimedOut = false;
  /** Why the handshake was refused, once it was. */
  #refused: string | null = null;

  /** Drives an app through its real handshake, or one consumer directly; nothing happens before `connect`. */
  constructor(target: App | ConsumerTarget, path: string, options: CommunicatorOptions = {}) {
    this.#url = new URL(path, "http://localhost");
    this.#headers = new Headers(options.headers);
    if (options.subprotocols !== undefined) {
      this.#headers.set("sec-websocket-protocol", options.subprotocols.join(", "));
    }
    const { promise, resolve } = Promise.withResolvers<{ code: number; reason: string }>();
    this.closed = promise;
    this.socket = new FakeSocket({
      frame: (data) => this.#arrivals.push(data),
      closed: (code, reason) => {
        this.#closeCode = code;
        resolve({ code, reason });
        this.#arrivals.wake();
      },
    });
    this.#reports = new ConsumerReports(this.socket);
    if ("handle" in target) {
      if (options.user) throw new TypeError("The user option needs a consumer, not an app");
      const info = clientInfo();
      this.#handle = (request) => target.handle(request, info);
      this.#live = target.live;
    } else {
      this.#live = new LiveConnections();
      this.#handle = consumerHandler(target, this.#live, options.user);
    }
  }

  /**
   * Frames dropped because the consumer sent more before the socket opened than its queue
   * holds (for an app, every socket of the app counts).
   */
  get droppedBeforeOpen(): number {
    return this.#live.droppedBeforeOpen;
  }

  /** The subprotocol the server's 101 answered with; `""` when none (or before `connect`). */
  get protocol(): string {
    return this.#protocol;
  }

  /** The close code once closed, else `null`. */
  get closeCode(): number | null {
    return this.#closeCode;
  }

  /**
   * Makes the handshake; `accepted` is false when it was answered with `status` instead (and
   * the refusal's `reason` and `code`). Rejects when the handshake, `connect` hook included,
   * takes longer than `timeoutMs`, or with what the `connect` hook raised (refused with 500 or
   * 503); when the client left meanwhile (a `disconnect()` while `connect` runs), it resolves
   * with the answer (499, or that refusal) however long the hook takes, and the `disconnect()`
   * rejects with what was raised, or when the hook never finishes.
   */
  async connect(timeoutMs = HOOK_TIMEOUT_MS): Promise<ConnectResult> {
    // One communicator is one socket: a second handshake would orphan the first connection.
    if (this.#connecting) {
      throw new Error("connect was called already: make a new Communicator for another socket");
    }
    this.#connecting = true;
    const request = handshakeRequest(this.#url, this.#headers, {
      socket: this.socket,
      signal: this.#leaving.signal,
    });
    // Read even when `connect` gave up on it, or the client left: what the consumer raised is
    // then told by `disconnect`, which waits for this.
    const answered = this.#handle(request).then((response) => this.#answered(request, response));
    this.#handshake = answered.catch(() => {});
    try {
      return await withTimeout(
        answered,
        timeoutMs,
        `The handshake did not finish within ${timeoutMs} ms: does the consumer's connect hook ` +
          "ever resolve?",
      );
    } catch (error) {
      if (!(error instanceof NoAnswerInTimeError)) throw error;
      // The client left first (a `disconnect()` while this runs): the test awaits that
      // `disconnect()` before this, so rejecting now would reach no one and fail the whole test
      // file. It waits for the answer instead (499), and a hook that never finishes is told by
      // the `disconnect()`, which gives up on it.
      if (this.#leaving.signal.aborted) return await answered;
      this.#connectTimedOut = true;
      this.#arrivals.wake(); // a `waitForClose()` under way leaves in its place (see there)
      throw error;
    }
  }

  /** What the server's answer to the handshake tells; the socket opens when it was accepted. */
  async #answered(request: Request, response: Response): Promise<ConnectResult> {
    const notTaken = withdrawSocket(request);
    // Deno's own `upgradeWebSocket` refused it (no socket was made), or another upgrade made a
    // socket no test can reach.
    if (reachedDenoUpgrade(request) || (response.status === 101 && notTaken)) {
      throw new Error(
        "The app upgraded with Deno's own WebSocket, which a communicator cannot reach: " +
          "create it with `createApp({ ..., upgrade: testUpgrade })`",
      );
    }
    if (response.status !== 101) {
      this.#reports.adoptUnupgraded(request);
      const reason = (await response.text()).trim();
      this.#refused = `the handshake was refused with ${response.status} (${
        refusalShown(response, reason, this.#url)
      })`;
      const refusal = consumerRefusals.get(request);
      // Raised, as Channels' communicator raises what the consumer raised: a test's log is
      // silent, and its error and stack would be found nowhere else.
      if (refusal?.error !== undefined) this.#connectFailed(response.status, refusal.error);
      const code = refusal?.code;
      return { accepted: false, status: response.status, reason, ...(code && { code }) };
    }
    if (this.#connectTimedOut) return { accepted: true, status: 101 }; // no one to open it for
    this.#protocol = response.headers.get("sec-websocket-protocol") ?? "";
    this.socket.open();
    this.#open = true;
    // The log's warning is silent in a test (`createTestServices`), and a `receiveNothing()`
    // would pass for the wrong reason: said where the test's output shows it.
    const misnamed = this.#reports.misnamed;
    if (misnamed !== undefined) console.warn(`Communicator: ${misnamed}`);
    return { accepted: true, status: 101 };
  }

  /**
   * Raises what the consumer's `connect` raised, as `connect()`'s rejection; unless the client
   * left before the answer (a `disconnect()` during `connect`) or `connect()` gave up waiting:
   * as on a server, the refusal was answered to no one (`connect()` resolves with it), and the
   * `disconnect()` the test awaits raises it. Rejecting `connect()` then would fail the test
   * file with an unhandled rejection while the test awaits `disconnect()` first.
   */
  #connectFailed(status: number, error: unknown): void {
    if (!this.#leaving.signal.aborted && !this.#connectTimedOut) {
      throw consumerFailed(`connect, refused with ${status}`, error);
    }
    const when = `connect, refused with ${status} to a client that no longer waited`;
    this.#reports.untoldConnectFailure(consumerFailed(when, error));
  }

  /** Sends a text or binary frame to the consumer. */
  send(data: string | Uint8Array): void {
    // As a browser's WebSocket throws before it opens; after it closed, the frame is dropped.
    if (this.#refused !== null) throw new Error(`No socket to send on: ${this.#refused}`);
    if (!this.#open) {
      throw new Error("send before an accepted connect: await comm.connect() first");
    }
    this.socket.deliver(typeof data === "string" ? data : data.slice().buffer);
  }

  /** Sends a value as a JSON text frame. */
  sendJson(value: unknown): void {
    this.send(JSON.stringify(value));
  }

  /** The next frame; rejects after `timeoutMs`, or at once when the socket closed. */
  async receive(timeoutMs = RECEIVE_TIMEOUT_MS): Promise<string | Uint8Array> {
    if (this.#refused !== null) throw new Error(`No frame: ${this.#refused}`);
    if (!this.#connecting) throw new Error("receive before connect: await comm.connect() first");
    const deadline = Date.now() + timeoutMs;
    while (this.#arrivals.count === 0) {
      if (this.#closeCode !== null) {
        this.#closeSeen = true;
        throw this.#reports.failedBefore(this.#closeCode) ??
          new Error(`No frame: the socket closed with ${this.#closeCode}`);
      }
      if (!await this.#arrivals.wait(deadline - Date.now())) {
        throw this.#reports.noFrameWithin(timeoutMs);
      }
    }
    return this.#arrivals.take();
  }

  /** The next frame parsed as JSON. */
  async receiveJson<T = Record<string, unknown>>(timeoutMs = RECEIVE_TIMEOUT_MS): Promise<T> {
    return jsonOf(await this.receive(timeoutMs)) as T;
  }

  /**
   * True when nothing arrives within `ms`: no frame, and no close by the server, as Channels'
   * `receive_nothing` (what already waits counts as arrived; a close the test saw already, through
   * `waitForClose`, `disconnect` or a `receive` that threw, does not).
   */
  async receiveNothing(ms = 100): Promise<boolean> {
    if (this.#somethingNew()) return false;
    await this.#arrivals.wait(ms);
    return !this.#somethingNew();
  }

  #somethingNew(): boolean {
    return this.#arrivals.count > 0 || (this.#closeCode !== null && !this.#closeSeen);
  }

  /**
   * Closes from the client's end and waits for the consumer's `disconnect` to finish (nothing
   * before `connect`: there is no socket yet, and the communicator stays usable); rejects when
   * that takes longer than `timeoutMs` (naming the `connect` hook when the handshake is still
   * under way then, unless `connect` timed out already: it is let go without a word), or with
   * what the consumer raised: before the close (it closed the socket with 1011), unless
   * `receive` or `waitForClose` raised it already, or after it (its `disconnect` hook, or a hook
   * still running then).
   */
  async disconnect(code = 1000, timeoutMs = HOOK_TIMEOUT_MS): Promise<void> {
    // Before `connect` there is no socket and no consumer: nothing to close. Quiet, so a test's
    // `finally { await comm.disconnect() }` is safe whether its `connect` ran or not.
    if (!this.#connecting) return;
    this.#closeSeen = true;
    // A hang-up while `connect` runs is a client that left during the handshake: the server
    // does not upgrade it (499), and runs the consumer's `disconnect` with 1006 once `connect`
    // finished. Waited for below, before the socket's own end.
    this.#leaving.abort();
    this.socket.hangUp(code);
    await this.closed;
    await this.#consumerFinished(
      timeoutMs,
      `The consumer did not finish within ${timeoutMs} ms of the close: does its disconnect ` +
        "hook (or a hook still running) ever resolve?",
    );
    await this.#reports.raiseUntold(this.#closeCode);
  }

  /**
   * Waits for the server to close the socket and for the consumer's `disconnect` to finish;
   * returns the code. Rejects when the close takes longer than `timeoutMs`, or the consumer's
   * hooks longer than `hookTimeoutMs` after it (as `disconnect`'s: a hook still running at the
   * close is given 3 s by the framework before `disconnect` runs), or with what the consumer
   * raised, as `disconnect` does: a test that expects a failure asserts the rejection ("closed
   * with 1011"). After a `connect(ms)` that gave up, it leaves as `disconnect()` does, within
   * `hookTimeoutMs`, and resolves with the code it closed with (1000).
   */
  async waitForClose(
    timeoutMs = RECEIVE_TIMEOUT_MS,
    hookTimeoutMs = HOOK_TIMEOUT_MS,
  ): Promise<number> {
    if (this.#connectTimedOut) return await this.#leaveUnopened(hookTimeoutMs);
    if (this.#refused !== null) throw new Error(`No socket to close: ${this.#refused}`);
    if (!this.#connecting) {
      throw new Error("waitForClose before connect: await comm.connect() first");
    }
    const deadline = Date.now() + timeoutMs;
    while (this.#closeCode === null) {
      if (this.#connectTimedOut) return await this.#leaveUnopened(hookTimeoutMs);
      if (!await this.#arrivals.wait(deadline - Date.now())) {
        throw new NoAnswerInTimeError(`Socket still open after ${timeoutMs} ms`);
      }
    }
    await this.#consumerFinished(
      hookTimeoutMs,
      `The socket closed with ${this.#closeCode}, but the consumer did not finish within ` +
        `${hookTimeoutMs} ms: does its disconnect hook (or a hook still running) ever resolve?`,
    );
    this.#closeSeen = true;
    await this.#reports.raiseUntold(this.#closeCode);
    return this.#closeCode;
  }

  /**
   * After `connect(ms)` gave up, no socket opened for the server to close (one held by a stuck
   * `connect` hook, or answered after the test stopped waiting): only the client can end it,
   * so it leaves, through `disconnect`'s own path (what it waits for, what it lets go, what it
   * raises), and says so with its code.
   */
  async #leaveUnopened(timeoutMs: number): Promise<number> {
    await this.disconnect(1000, timeoutMs);
    return this.#closeCode!; // set by the close `disconnect` awaited
  }

  /**
   * Resolves once the handshake ended and, if it upgraded the socket, the consumer finished;
   * rejects with `hookStuck` when that takes longer than `timeoutMs`. A handshake still under
   * way then is its `connect` hook's doing, not its `disconnect`'s: said so, or, when `connect`
   * told the test already, let go (the server could not end it either), so a cleanup in a
   * `finally` does not replace that error with another.
   */
  async #consumerFinished(timeoutMs: number, hookStuck: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Before it ended, the socket is not tracked yet: it would read as finished at once.
    if (!await settlesWithin(this.#handshake, timeoutMs)) {
      if (this.#connectTimedOut) {
        this.#handshake = Promise.resolve(); // given up on: a later wait does not wait again
        return;
      }
      throw new NoAnswerInTimeError(
        `The handshake did not finish within ${timeoutMs} ms of the client's leaving: does the ` +
          "consumer's connect hook ever resolve?",
      );
    }
    await withTimeout(this.#live.finished(this.socket), deadline - Date.now(), hookStuck);
  }
}
