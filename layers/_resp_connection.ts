/**
 * A lean connection to one Redis server, speaking RESP2 over Deno's own TCP or TLS: the hot
 * path of Redis streams (one `EVALSHA` per chat message) on a `redis://` or `rediss://` URL.
 *
 * node-redis reaches the network through Deno's `node:net` emulation: a Node stream, event
 * emitters, an `Immediate` per write and a timer refresh per read. In the rooms benchmark that
 * cost about 65 µs of CPU more per command than this connection does. Everything else
 * (pub/sub, Sentinel, Cluster, blocking pops) stays on node-redis (`redis_connection.ts`).
 *
 * It behaves as `connectRedis`'s connections do without an offline queue:
 * - Commands are written in the order they are called; those of one turn in one write. With
 *   `lingerMs`, a command called less than `lingerMs` after the one before it is held for more
 *   to share its write (and Redis's one read and answer), as Kafka's `linger.ms` does: CPU on
 *   both sides for latency, under load only. The held commands go with the first command called
 *   `lingerMs` or more after the first of them, in that command's turn, so the hold costs no
 *   wakeup of its own; when none comes, after twice `lingerMs`. A command after a quiet spell
 *   goes at once. The linger holds only while it pays: when its timer has to write the held
 *   commands, no later command came in twice the linger to take them along, so their callers
 *   are likely awaiting the answers before their next commands (one caller or several), which
 *   no hold can pair; the next {@linkcode UNHELD_AFTER_TIMED_HOLD} writes then go at once, so
 *   such callers wait for one hold in that many writes, not for every one.
 * - While the connection is lost, commands reject at once, and it reconnects by itself with a
 *   growing backoff (0.1 s doubling to 5 s, with jitter). Its health reaches the metrics under
 *   its name, as every Redis connection's does (`redis_health.ts`).
 * - A command not answered within the reply timeout rejects, and the connection is dropped
 *   and made again: an answer that did not come in time says the connection cannot be trusted.
 * - At most {@linkcode MAX_WAITING} commands wait for their answer; more reject at once.
 */
import { RedisConnectionLostError, UnansweredError } from "./_resp_errors.ts";
import { type RedisHealthSource, trackRedisConnection } from "../storage/redis_health.ts";
import { redactUrl, withTimeout } from "../storage/redis_connection.ts";
import { log } from "../telemetry/log.ts";
import { encodeCommand, type RespReply } from "./_resp_codec.ts";
import { dial, readReplies } from "./_resp_socket.ts";

/** Commands that may wait for their answers at once: a bound, not a queue without end. */
export const MAX_WAITING = 10_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
/** With a linger, this many unwritten commands are written at once, whatever the time. */
const LINGER_MAX_COMMANDS = 64;
/** Held commands that no later command takes along are written after this many lingers. */
const LINGER_TIMER_FACTOR = 2;
/** After a hold its timer ended, this many writes go unheld before the linger tries again. */
export const UNHELD_AFTER_TIMED_HOLD = 32;
const encoder = new TextEncoder();

/** How a {@linkcode RespConnection} connects and how long it waits. */
export interface RespConnectionOptions {
  /** Its name in logs and metrics, e.g. "streams". */
  name: string;
  /** The first connect fails after this long (default 5 s). */
  connectTimeoutMs?: number;
  /** A command with no answer after this long rejects; checked 4 times as often (3 s). */
  replyTimeoutMs?: number;
  /** Called each time the connection is made again after it was lost. */
  onRestored?: () => void;
  /**
   * Commands said on every connect before any other, e.g. `SCRIPT LOAD`: a Redis restarted
   * empty then knows the scripts before the first `EVALSHA` after it, so no call is answered
   * `NOSCRIPT` and sent again behind a later one. One Redis refuses is logged, not fatal.
   */
  setup?: readonly string[][];
  /**
   * Under load, how long a command is held for others to share its write (default 0: none),
   * and at most twice that when none comes. See the module doc.
   */
  lingerMs?: number;
}

interface Waiting {
  resolve: (reply: RespReply) => void;
  reject: (error: Error) => void;
  sentAt: number;
}

/** One connection to one Redis server; see the module doc. */
export class RespConnection implements RedisHealthSource {
  readonly name: string;
  up = false;
  lostSince: number | null = null;
  restoredCount = 0;
  downMsRestored = 0;
  #url: URL;
  #shown: string;
  #connectTimeoutMs: number;
  #replyTimeoutMs: number;
  #onRestored: (() => void) | undefined;
  #setup: readonly string[][];
  #conn: Deno.Conn | null = null;
  /** Commands written or to be written, oldest first, from `#head` on. */
  #waiting: Waiting[] = [];
  #head = 0;
  #unwritten: string[] = [];
  #writing = false;
  #lingerMs: number;
  /** When the last command was called (`performance.now()`): a linger holds only under load. */
  #lastCallAt = -Infinity;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the first of the commands the linger holds was called. */
  #heldSince = 0;
  /** Writes still to go unheld, after a hold its timer ended (see the module doc). */
  #unheld = 0;
  /** A write is due at the end of this turn. */
  #writeQueued = false;
  #closed = false;
  /** The close under way: it waits for the answers of what was called before it. */
  #closing: Promise<void> | undefined;
  /** The last command called: a close waits for its answer, the last to come. */
  #lastCall: Promise<RespReply> | undefined;
  #retries = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** A connect is under way: its caller retries when it fails, not whoever notices first. */
  #connecting = false;
  #watchdog: ReturnType<typeof setInterval>;
  #untrack: () => void;

  private constructor(url: URL, options: RespConnectionOptions) {
    this.name = options.name;
    this.#url = url;
    this.#shown = redactUrl(url.href);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#replyTimeoutMs = options.replyTimeoutMs ?? 3000;
    this.#onRestored = options.onRestored;
    this.#setup = options.setup ?? [];
    this.#lingerMs = options.lingerMs ?? 0;
    this.#watchdog = setInterval(() => this.#checkAnswers(), this.#replyTimeoutMs / 4);
    Deno.unrefTimer(this.#watchdog);
    this.#untrack = trackRedisConnection(this);
  }

  /** Whether `url` is one this connection can reach: `redis://` or `rediss://`. */
  static canReach(url: string): boolean {
    return /^rediss?:\/\//i.test(url);
  }

  /** Connects; rejects naming the (redacted) URL when Redis cannot be reached in time. */
  static async open(url: string, options: RespConnectionOptions): Promise<RespConnection> {
    const connection = new RespConnection(new URL(url), options);
    try {
      await connection.#connect();
    } catch (error) {
      await connection.close();
      throw new Error(
        `Cannot connect to Redis at ${connection.#shown}: ${(error as Error).message}`,
      );
    }
    return connection;
  }

  /** Sends one command (`["EVALSHA", sha, ...]`); resolves with its reply. */
  call(args: string[]): Promise<RespReply> {
    if (this.#closed || this.#closing !== undefined) {
      return Promise.reject(new Error("The connection is closed"));
    }
    if (!this.up) {
      return Promise.reject(new RedisConnectionLostError("connection lost; reconnecting"));
    }
    return this.#send(args);
  }

  // Queues a command on the connection there is, up or still being set up (`#connectOnce`).
  #send(args: string[]): Promise<RespReply> {
    if (this.#waiting.length - this.#head >= MAX_WAITING) {
      return Promise.reject(new Error(`more than ${MAX_WAITING} commands wait for answers`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<RespReply>();
    this.#waiting.push({ resolve, reject, sentAt: performance.now() });
    this.#unwritten.push(encodeCommand(args));
    this.#lastCall = promise;
    // A write under way takes what was called meanwhile when it is done.
    if (!this.#writing) this.#scheduleWrite();
    return promise;
  }

  // Written after this turn, with every command called in it; with a linger, under load, when
  // the linger is over or enough commands wait.
  #scheduleWrite(): void {
    if (this.#writeQueued) return;
    const now = this.#lingerMs > 0 ? performance.now() : 0;
    const underLoad = now - this.#lastCallAt < this.#lingerMs;
    this.#lastCallAt = now;
    if (this.#unheld > 0) this.#unheld--;
    else if (underLoad && this.#unwritten.length < LINGER_MAX_COMMANDS) {
      if (this.#lingerTimer === undefined) {
        this.#heldSince = now;
        // Under load, a later command comes once the linger is over, in a turn that runs
        // anyway, and takes the held ones along (below). A timer of its own would wake the
        // process once more per write: it is only for when no command comes, so it is later.
        this.#lingerTimer = setTimeout(() => {
          this.#lingerTimer = undefined;
          // No command came to take these along: their callers likely await the answers.
          this.#unheld = UNHELD_AFTER_TIMED_HOLD;
          void this.#write();
        }, this.#lingerMs * LINGER_TIMER_FACTOR);
        return;
      }
      if (now - this.#heldSince < this.#lingerMs) return;
    }
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    this.#writeQueued = true;
    queueMicrotask(() => {
      this.#writeQueued = false;
      void this.#write();
    });
  }

  /**
   * Closes the connection. The commands called before are written now, a held one too, and
   * their answers awaited up to the reply timeout, as node-redis's `close` does: a graceful
   * stop loses no publish the linger was holding. What is still unanswered then rejects.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#closeAfterAnswers();
  }

  async #closeAfterAnswers(): Promise<void> {
    const last = this.#lastCall;
    if (this.up && last !== undefined && this.#head < this.#waiting.length) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
      void this.#write();
      await withTimeout(last, this.#replyTimeoutMs, "late").catch(() => {});
    }
    this.#closed = true;
    this.up = false;
    clearInterval(this.#watchdog);
    clearTimeout(this.#lingerTimer);
    clearTimeout(this.#retryTimer);
    this.#untrack();
    this.#drop(new Error("The connection is closed"));
    // Its reader then ends, and Redis sees the client go: nothing of it is left open.
    const conn = this.#conn;
    this.#conn = null;
    try {
      conn?.close();
    } catch { /* closed already */ }
  }

  async #connect(): Promise<void> {
    this.#connecting = true;
    let conn: Deno.Conn;
    try {
      conn = await this.#connectOnce();
    } finally {
      this.#connecting = false;
    }
    // Lost after its setup was answered, while the loss could not retry: the caller does.
    if (this.#conn !== conn) throw new Error("connection lost while it was set up");
  }

  async #connectOnce(): Promise<Deno.Conn> {
    const conn = await dial(this.#url, this.#connectTimeoutMs);
    if (this.#closed) {
      conn.close(); // closed while it connected: nothing may be left open
      throw new Error("The connection is closed");
    }
    // Up only once its set-up is answered: a Redis that accepts TCP but does not answer (paused,
    // or busy loading) would otherwise take commands behind an unanswered PING, which it could
    // run long after their callers were told they may not have been, and after later ones.
    // Until then, what is called is refused at once, as while the connection is lost.
    this.#conn = conn;
    readReplies(conn, (reply) => this.#answer(reply)).catch((error) => this.#lost(conn, error));
    // Said before any other command, so nothing is sent unauthenticated or to database 0, and
    // with no linger: nothing else can be waiting to share their write.
    this.#lastCallAt = -Infinity;
    const password = decodeURIComponent(this.#url.password);
    const username = decodeURIComponent(this.#url.username);
    const database = this.#url.pathname.slice(1);
    const setup: Promise<RespReply>[] = [];
    if (password !== "") {
      setup.push(this.#send(username === "" ? ["AUTH", password] : ["AUTH", username, password]));
    }
    if (database !== "" && database !== "0") setup.push(this.#send(["SELECT", database]));
    // A PING proves it is Redis that answered (a proxy or another service also accepts TCP).
    setup.push(this.#send(["PING"]));
    // Pipelined behind those: refused for their sake (NOAUTH after a wrong password), they are
    // not what is wrong.
    const required = Promise.all(setup).then(() => true, () => false);
    for (const command of this.#setup) {
      setup.push(
        this.#send([...command]).catch(async (error) => {
          if (this.#conn !== conn) throw error; // lost: the connect fails
          if (!await required) return null; // the connect fails, and says why
          // Refused by Redis (an ACL without SCRIPT, say): the connection works without it.
          log.warn(
            `Redis connection "${this.name}" to ${this.#shown}: ${command[0]} refused at connect ` +
              `(${(error as Error).message})`,
          );
          return null;
        }),
      );
    }
    try {
      await Promise.all(setup);
    } catch (error) {
      this.#lost(conn, error as Error, false);
      throw error;
    }
    if (this.#conn === conn) this.up = true;
    return conn;
  }

  async #write(): Promise<void> {
    const conn = this.#conn;
    if (conn === null || this.#writing) return;
    this.#writing = true;
    try {
      while (this.#unwritten.length > 0 && this.#conn === conn) {
        const text = this.#unwritten.length === 1 ? this.#unwritten[0] : this.#unwritten.join("");
        this.#unwritten = [];
        const bytes = encoder.encode(text);
        for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      }
    } catch (error) {
      this.#lost(conn, error as Error);
    } finally {
      this.#writing = false;
    }
  }

  #answer(value: RespReply | Error): void {
    const waiting = this.#waiting[this.#head];
    if (waiting === undefined) return; // an answer to no command: nothing to hand it to
    this.#waiting[this.#head++] = undefined!;
    // Let go of what was answered now and then, not on every reply.
    if (this.#head === this.#waiting.length) {
      this.#waiting.length = this.#head = 0;
    } else if (this.#head >= 1024) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    if (value instanceof Error) waiting.reject(value);
    else waiting.resolve(value);
  }

  #checkAnswers(): void {
    const oldest = this.#waiting[this.#head];
    if (oldest === undefined || this.#conn === null) return;
    if (performance.now() - oldest.sentAt > this.#replyTimeoutMs) {
      this.#lost(this.#conn, new Error("no answer in time"));
    }
  }

  /** The connection `conn` failed: what waits rejects, and a new one is made (`retry`). */
  #lost(conn: Deno.Conn, error: Error, retry = true): void {
    if (this.#conn !== conn) return; // an old connection's late news
    this.#conn = null;
    this.up = false;
    try {
      conn.close();
    } catch { /* closed already */ }
    this.#drop(new RedisConnectionLostError(`connection lost: ${error.message}`));
    if (this.#closed || !retry || this.#connecting) return;
    if (this.lostSince === null) {
      this.lostSince = performance.now();
      log.warn(`Redis connection "${this.name}" to ${this.#shown} lost (${error.message})`);
    }
    this.#retryLater();
  }

  // One retry at a time: a second loop would double the attempts at each failure.
  #retryLater(): void {
    if (this.#retryTimer !== undefined) return;
    const backoff = Math.min(FIRST_BACKOFF_MS * 2 ** Math.min(this.#retries++, 10), MAX_BACKOFF_MS);
    this.#retryTimer = setTimeout(async () => {
      this.#retryTimer = undefined;
      if (this.#closed) return;
      try {
        await this.#connect();
      } catch (error) {
        log.debug(`Redis connection "${this.name}" to ${this.#shown}: ${(error as Error).message}`);
        if (!this.#closed) this.#retryLater();
        return;
      }
      if (this.#closing !== undefined) return; // closed while it connected: no news of it
      this.#retries = 0;
      this.restoredCount++;
      this.downMsRestored += performance.now() - (this.lostSince ?? performance.now());
      this.lostSince = null;
      log.info(`Redis connection "${this.name}" to ${this.#shown} restored`);
      this.#onRestored?.();
    }, backoff + Math.floor(Math.random() * 100));
  }

  #drop(error: Error): void {
    const waiting = this.#waiting.slice(this.#head);
    // The last `#unwritten` of them never left; the others were written (or are being).
    const written = waiting.length - this.#unwritten.length;
    this.#waiting = [];
    this.#head = 0;
    this.#unwritten = [];
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    const unanswered = new UnansweredError(error.message);
    waiting.forEach((command, i) => command.reject(i < written ? unanswered : error));
  }
}
