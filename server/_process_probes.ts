/**
 * What the process reports about itself for the metrics: the event loop's lag, the CPU time
 * it used, and the host it runs on. The CPU time and the host are read only where no permission
 * prompt is needed.
 */

const LAG_INTERVAL_MS = 500;
const LAG_WINDOW = 120; // samples: one minute

/** Measures how late a 500 ms timer fires: the event loop's lag. */
export class LagMonitor {
  /** The last lag, in seconds. */
  last = 0;
  #recent: number[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #expected = 0;

  /** Starts the timer; safe to call twice. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#expected = performance.now() + LAG_INTERVAL_MS;
    const timer = setInterval(() => {
      const now = performance.now();
      this.last = Math.max(0, now - this.#expected) / 1000;
      this.#expected = now + LAG_INTERVAL_MS;
      this.#recent.push(this.last);
      if (this.#recent.length > LAG_WINDOW) this.#recent.shift();
    }, LAG_INTERVAL_MS);
    // Never what keeps a process alive.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Stops the timer. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The largest lag of the latest minute, in seconds. */
  max(): number {
    return this.#recent.reduce((a, b) => Math.max(a, b), this.last);
  }
}

// Not /proc/self/stat: Deno reads it only with --allow-all, which `deno task start` is not.
// `Deno.cpuUsage` (microseconds) is what `node:process`'s `cpuUsage` calls; it is not in Deno's
// declared types, so it is looked up, not assumed. `node:process` itself would set up Node's
// `process` for the whole run, which costs every request (see bench/HISTORY.md, session 16).
const cpuUsage = (Deno as unknown as { cpuUsage?: () => { user: number; system: number } })
  .cpuUsage;

/** The CPU time the process used, in seconds (user and system), or null when unreadable. */
export function cpuSeconds(): number | null {
  try {
    if (cpuUsage === undefined) return null;
    const { user, system } = cpuUsage();
    return (user + system) / 1_000_000;
  } catch {
    return null;
  }
}

/** The host's name, or "localhost" when the process may not ask for it. */
export function hostname(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      return Deno.hostname();
    }
  } catch {
    // not allowed to ask
  }
  return "localhost";
}
