/**
 * Background workers on named channels: Channels' `ChannelNameRouter` and `runworker`. A
 * route table maps channel names to worker consumers; {@linkcode runChannelWorkers} listens on
 * those names through the group layer, in the server's process or in one of its own
 * (`deno task worker dice`). Any consumer hands work to a worker with
 * `conn.channelSend("dice", event)`; the worker answers a group with `ctx.groupSend`.
 *
 * Delivery is the layer's named-channel contract (`layers/layer.ts`): each event reaches one
 * worker at most once, events from one sender in the order sent, and a send with no worker
 * listening is reported to the sender (`noListener`), never silently lost. A worker handles
 * its events one at a time, in order. A handler that throws is logged with its channel and
 * event type, and the worker goes on with the next event; an event without a handler is
 * logged too. Stopping waits a bounded time for the events already taken (`stopTimeoutMs`):
 * a handler that never returns must not hold a shutdown, and the writes after it, forever.
 *
 * @example
 * ```ts
 * import {
 *   type ChannelWorker, channelNameRouter, runChannelWorkers, type Services,
 * } from "@channels/deno";
 *
 * declare const services: Services;
 * declare function makeThumbnail(photo: string): Promise<string>; // the app's own work
 *
 * const thumbnails: ChannelWorker = (ctx) => ({
 *   events: {
 *     "thumbnail.make": async (event) => {
 *       const url = await makeThumbnail(String(event.photo));
 *       await ctx.groupSend(`album.${event.album}`, { type: "thumbnail.ready", url });
 *     },
 *   },
 * });
 * const workers = await runChannelWorkers(channelNameRouter({ thumbnails }), services);
 * // ... and at shutdown:
 * await workers.close();
 * ```
 */
import { tellTest } from "./_told_in_tests.ts";
import type { LayerEvent, SendResult, Unlisten } from "../layers/layer.ts";
import { validateNamedChannel } from "../layers/layer.ts";
import type { Services } from "./context.ts";
import { log, type Logger } from "../telemetry/log.ts";
import { settlesWithin } from "./drain.ts";
import { eventHandlerKey } from "./_event_names.ts";

/** What a worker consumer reaches: its channel, the app's services, and the layer. */
export interface WorkerContext {
  /** The named channel this worker takes events from, e.g. `"dice"`. */
  readonly channel: string;
  /** The app's services: configuration, layer, store, streams. */
  readonly services: Services;
  /** The process's logger. */
  readonly log: Logger;
  /** Sends an event to every member of a group: how a worker answers a room. */
  groupSend(group: string, event: LayerEvent): Promise<SendResult>;
  /** Sends an event to one channel: a connection's (to answer its sender) or a worker's. */
  channelSend(channel: string, event: LayerEvent): Promise<SendResult>;
}

/** A worker's handlers, by event `type`, as a consumer's `events`. */
export interface WorkerHooks {
  /** Handlers for the events sent to the worker's channel, by their `type`. */
  readonly events: Readonly<Record<string, (event: LayerEvent) => void | Promise<void>>>;
  /** Runs once when the worker stops, after its last event. */
  stop?(): void | Promise<void>;
}

/** A worker consumer: builds one worker's hooks (once per channel and process). */
export type ChannelWorker = (ctx: WorkerContext) => WorkerHooks;

/** Channel names mapped to worker consumers (Channels' `ChannelNameRouter`). */
export interface ChannelNameRouter {
  /** The channel names it routes, in the order given. */
  readonly names: readonly string[];
  /** The worker of `name`; `undefined` when it routes no such name. */
  worker(name: string): ChannelWorker | undefined;
}

/**
 * Builds a route table of named channels to workers; throws a `TypeError` for a name that
 * cannot be a named channel (ASCII letters, digits, `-`, `_`, `.`, under 100 characters).
 */
export function channelNameRouter(routes: Record<string, ChannelWorker>): ChannelNameRouter {
  const table = new Map(Object.entries(routes));
  for (const name of table.keys()) validateNamedChannel(name);
  return {
    names: Object.freeze([...table.keys()]),
    worker: (name) => table.get(name),
  };
}

/** How {@linkcode runChannelWorkers} runs. */
export interface RunChannelWorkersOptions {
  /** The channels to run (default: every one the router names); unknown names throw. */
  names?: readonly string[];
  /** Events a worker may hold waiting for its handlers before it refuses more (default 1000). */
  capacity?: number;
  /**
   * Log a line per channel once it listens (default true). A server that may still fail to
   * start (its port taken) passes false and says so itself once it serves.
   */
  announce?: boolean;
  /**
   * How long `close` waits for the events already taken, the one being handled and those
   * queued behind it (default 500 ms, `WORKER_STOP_MS`). Then it gives up on them, with one
   * log line naming the channel and the event type still running, and stops anyway.
   */
  stopTimeoutMs?: number;
}

/**
 * How long a stop waits for the events workers have taken (see
 * {@linkcode RunChannelWorkersOptions.stopTimeoutMs}). Short, because the server stops its
 * workers after the drain's sockets closed (a handler under way has had the whole window) and
 * the streams are written after them, within the drain's deadline (window + 2 s; with
 * `--workers`, window + 1.5 s).
 */
export const WORKER_STOP_MS = 500;

/**
 * How many events a worker on a shared queue (Redis) takes ahead of the one it handles: one, so
 * the next one's round trip overlaps the handler, and the backlog waits in Redis, where another
 * worker can take it and the queue's capacity tells its senders. A stop that gives up on a hung
 * handler gives up on that one event too (logged and counted in `abandoned`).
 */
export const WORKER_PREFETCH = 1;

/** Counters of running workers. */
export interface WorkerStats {
  /** Events whose handler finished. */
  handled: number;
  /** Events whose handler threw (logged; the worker went on). */
  failed: number;
  /** Events no handler was named for (logged). */
  unhandled: number;
  /** Events given up on at a stop: a handler still running, and the events queued behind it. */
  abandoned: number;
}

/** Workers listening on their channels; {@linkcode RunningWorkers.close} stops them. */
export interface RunningWorkers {
  /** The channels listened on. */
  readonly names: readonly string[];
  /** Counters since the workers started. */
  stats(): WorkerStats;
  /**
   * Stops listening, lets the events already taken finish (at most `stopTimeoutMs`, then
   * gives up on them, logged), then runs each `stop`.
   */
  close(): Promise<void>;
}

/** What is said of the `names` `router` has no worker for, or `null` when it has them all. */
export function unknownChannels(
  router: ChannelNameRouter,
  names: readonly string[],
): string | null {
  const unknown = names.filter((name) => router.worker(name) === undefined);
  if (unknown.length === 0) return null;
  return `No worker for channel(s) ${unknown.map((name) => `"${name}"`).join(", ")}; ` +
    `the router has ${router.names.map((name) => `"${name}"`).join(", ") || "none"}`;
}

/**
 * Listens on `options.names` (default: all the router's) through `services.layer` and runs
 * each channel's worker on the events sent to it. Resolves once sends from any process reach
 * the workers; rejects (listening on none) when a name is unknown or the layer refuses.
 */
export async function runChannelWorkers(
  router: ChannelNameRouter,
  services: Services,
  options: RunChannelWorkersOptions = {},
): Promise<RunningWorkers> {
  const names = [...(options.names ?? router.names)];
  const unknown = unknownChannels(router, names);
  if (unknown !== null) throw new Error(unknown);
  const stats: WorkerStats = { handled: 0, failed: 0, unhandled: 0, abandoned: 0 };
  const runners: WorkerRunner[] = [];
  try {
    for (const name of names) {
      const runner = new WorkerRunner(name, router.worker(name)!, services, stats, options);
      runners.push(runner);
      await runner.start();
    }
  } catch (error) {
    for (const runner of runners) await runner.close();
    throw error;
  }
  let closing: Promise<void> | null = null;
  return {
    names: Object.freeze(names),
    stats: () => ({ ...stats }),
    close: () => closing ??= Promise.all(runners.map((runner) => runner.close())).then(() => {}),
  };
}

/** One channel's worker: its queue of taken events, handled one at a time. */
class WorkerRunner {
  #name: string;
  #hooks: WorkerHooks;
  #services: Services;
  #stats: WorkerStats;
  #capacity: number;
  #announce: boolean;
  #stopTimeoutMs: number;
  #queue: LayerEvent[] = [];
  /** Waiting for room in the queue (see `#roomForMore`). */
  #roomWaiters: (() => void)[] = [];
  /** The event whose handler runs now, to name it when a stop gives up on it. */
  #current: LayerEvent | null = null;
  #running: Promise<void> | null = null;
  #unlisten: Unlisten | null = null;

  constructor(
    name: string,
    worker: ChannelWorker,
    services: Services,
    stats: WorkerStats,
    options: RunChannelWorkersOptions,
  ) {
    this.#name = name;
    this.#services = services;
    this.#stats = stats;
    this.#capacity = options.capacity ?? 1000;
    this.#announce = options.announce ?? true;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? WORKER_STOP_MS;
    const layer = services.layer;
    this.#hooks = worker({
      channel: name,
      services,
      log,
      groupSend: (group, event) => layer.groupSend(group, event),
      channelSend: (channel, event) => layer.send(channel, event),
    });
  }

  async start(): Promise<void> {
    // A layer with a shared queue (Redis) hands over the next event only once this worker is
    // idle: the events it has not started stay there for another worker, and the queue's own
    // capacity tells their senders when it is full.
    this.#unlisten = await this.#services.layer.listen(this.#name, (event) => this.#take(event), {
      ready: () => this.#roomForMore(),
    });
    if (this.#announce) log.info(`Worker listening on channel "${this.#name}"`);
  }

  async close(): Promise<void> {
    const unlisten = this.#unlisten;
    this.#unlisten = null;
    if (unlisten === null) return;
    await unlisten().catch((error) => log.warn(`Worker "${this.#name}" did not unlisten`, error));
    const running = this.#running ?? Promise.resolve();
    if (!await settlesWithin(running, this.#stopTimeoutMs)) this.#giveUp();
    try {
      await this.#hooks.stop?.();
    } catch (error) {
      log.error(`Worker "${this.#name}" failed to stop`, error);
    }
  }

  /** Leaves the event under way to itself and drops the queue: the stop goes on without them. */
  #giveUp(): void {
    const queued = this.#queue.length;
    // Emptied, so a handler that returns late does not start the next event after the stop.
    this.#queue.length = 0;
    this.#stats.abandoned += queued + (this.#current === null ? 0 : 1);
    const running = this.#current === null
      ? "its events"
      : `its "${this.#current.type}" event, still running`;
    const left = queued === 0 ? "" : `, and ${queued} queued event(s) never started`;
    log.warn(
      `Worker "${this.#name}" gave up on ${running} after ${this.#stopTimeoutMs / 1000} s` +
        `${left}; stopping without ${queued === 0 && this.#current !== null ? "it" : "them"}`,
    );
  }

  /** Takes one event from the layer; `false` (a drop, counted by the layer) when full. */
  #take(event: LayerEvent): boolean {
    if (this.#queue.length >= this.#capacity) return false;
    this.#queue.push(event);
    this.#running ??= this.#drain();
    return true;
  }

  /**
   * Resolves once fewer than {@linkcode WORKER_PREFETCH} events wait here (see there).
   */
  #roomForMore(): Promise<void> {
    if (this.#queue.length < Math.min(WORKER_PREFETCH, this.#capacity)) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  async #drain(): Promise<void> {
    // One at a time, in the order taken: a worker's events are a sender's sequence.
    for (let event = this.#queue.shift(); event !== undefined; event = this.#queue.shift()) {
      for (const resolve of this.#roomWaiters.splice(0)) resolve();
      this.#current = event;
      await this.#handle(event);
      this.#current = null;
    }
    this.#running = null;
  }

  async #handle(event: LayerEvent): Promise<void> {
    const events = this.#hooks.events;
    // Own handlers only (an event typed "constructor" must not reach Object's), or the one its
    // Channels method name takes.
    const key = eventHandlerKey(events, event.type);
    const handler = key === undefined ? undefined : events[key];
    if (handler === undefined) {
      this.#stats.unhandled++;
      const ignored = `Worker "${this.#name}" has no handler for "${event.type}" events: ignored`;
      log.warn(ignored);
      tellTest(this.#services, `Channel worker: ${ignored}`, { level: "warn" });
      return;
    }
    try {
      await handler(event);
      this.#stats.handled++;
    } catch (error) {
      this.#stats.failed++;
      const failed = `Worker "${this.#name}" failed on a "${event.type}" event; it goes on with ` +
        "the next";
      log.error(failed, error);
      tellTest(this.#services, `Channel worker: ${failed}:`, { error });
    }
  }
}
