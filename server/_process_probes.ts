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

// CPU time is read from /proc (Linux), when the process may read it without asking (a
// prompt); elsewhere the metric is left out.
/** Whether the process may read its CPU time from /proc without a prompt. */
export function procStatReadable(): boolean {
  try {
    return Deno.build.os === "linux" &&
      Deno.permissions.querySync({ name: "read", path: "/proc/self/stat" }).state === "granted";
  } catch {
    return false;
  }
}

// `utime` and `stime`, in clock ticks of 1/100 s.
/** The CPU time the process used, in seconds (user and system), or null when unreadable. */
export function cpuSeconds(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
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
