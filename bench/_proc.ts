/**
 * What the kernel knows about a server process: CPU time (all threads) from
 * `/proc/<pid>/stat`, resident memory now and at peak from `/proc/<pid>/status`.
 */

/** One reading of a process. */
export interface ProcSample {
  /** User + system CPU time, in milliseconds, summed over the process's threads. */
  cpuMs: number;
  /** Resident set size now, in bytes. */
  rssBytes: number;
  /** Peak resident set size since start (or since {@linkcode resetPeak}), in bytes. */
  peakBytes: number;
}

// USER_HZ is 100 on every Linux we run on; getconf is not worth a subprocess.
const TICKS_PER_SECOND = 100;

/** Reads the CPU time and memory of `pid`. */
export function sampleProcess(pid: number): ProcSample {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may contain spaces: count fields after its closing paren.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return {
    cpuMs: (ticks * 1000) / TICKS_PER_SECOND,
    rssBytes: statusKb(status, "VmRSS") * 1024,
    peakBytes: statusKb(status, "VmHWM") * 1024,
  };
}

/** Sums samples of several processes (a server made of many processes). */
export function sumSamples(samples: ProcSample[]): ProcSample {
  return samples.reduce((sum, s) => ({
    cpuMs: sum.cpuMs + s.cpuMs,
    rssBytes: sum.rssBytes + s.rssBytes,
    peakBytes: sum.peakBytes + s.peakBytes,
  }), { cpuMs: 0, rssBytes: 0, peakBytes: 0 });
}

/** `pid` and every process descended from it (a launcher's servers), read from /proc. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    const child = Number(entry.name);
    if (!Number.isInteger(child)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${child}/stat`);
    } catch {
      continue; // gone meanwhile
    }
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent)!.push(child);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;
}

/**
 * Resets the kernel's peak-RSS mark of `pid` to its current RSS (`clear_refs` 5); returns
 * false where that is not permitted, in which case the peak covers the process's lifetime.
 */
export function resetPeak(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

function statusKb(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return match ? Number(match[1]) : 0;
}

/** The whole machine's CPU time, all cores together, from `/proc/stat`. */
export interface MachineSample {
  /** Time any core spent on anything but idling (and waiting for I/O), ms. */
  busyMs: number;
  /** Time all cores spent in total, ms. */
  totalMs: number;
}

/** Reads the machine's CPU counters; a delta of two readings says how busy it was. */
export function sampleMachine(): MachineSample {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0];
  // user nice system idle iowait irq softirq steal; guest time is already counted in user.
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  const idle = ticks[3] + ticks[4];
  return {
    busyMs: ((total - idle) * 1000) / TICKS_PER_SECOND,
    totalMs: (total * 1000) / TICKS_PER_SECOND,
  };
}

/**
 * CPU readings taken at an interval, so that a window inside a longer run can be measured:
 * the seconds a load was applied, not the drain after it.
 */
export class CpuRecorder {
  #sources: (() => number)[];
  #samples: { at: number; values: number[] }[] = [];
  #timer: ReturnType<typeof setInterval>;

  /** Starts reading every source (CPU milliseconds so far) every `everyMs`. */
  constructor(sources: (() => number)[], everyMs = 250) {
    this.#sources = sources;
    this.#record();
    this.#timer = setInterval(() => this.#record(), everyMs);
  }

  /** Stops reading. */
  stop(): void {
    clearInterval(this.#timer);
    this.#record();
  }

  /**
   * Per source, CPU time in % of wall time (100: one core) between the first reading at or
   * after `from` and the last at or before `to` (`performance.now()` times); NaN if the
   * window holds fewer than two readings.
   */
  percent(from: number, to: number): number[] {
    const inside = this.#samples.filter((s) => s.at >= from && s.at <= to);
    if (inside.length < 2) return this.#sources.map(() => Number.NaN);
    const [first, last] = [inside[0], inside[inside.length - 1]];
    return first.values.map((value, i) => ((last.values[i] - value) * 100) / (last.at - first.at));
  }

  #record(): void {
    const values = this.#sources.map((source) => {
      try {
        return source();
      } catch {
        return Number.NaN; // a process that has exited
      }
    });
    this.#samples.push({ at: performance.now(), values });
  }
}
