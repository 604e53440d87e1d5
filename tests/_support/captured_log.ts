/**
 * The server's log lines captured for a test, at whatever level the test set.
 *
 * @example
 * ```ts
 * using captured = new CapturedLog();
 * await captured.waitFor(/WebSocket REJECT/);
 * ```
 */
import { log } from "../../telemetry/log.ts";
import { Waiters } from "./waiters.ts";

/** Collects log lines from construction until disposal; `waitFor` resolves once a line matches. */
export class CapturedLog {
  /** Every line so far, oldest first. */
  readonly lines: string[] = [];
  #waiters = new Waiters();

  constructor() {
    log.setSink((line) => {
      this.lines.push(line);
      this.#waiters.notify();
    });
  }

  /** The first line matching `pattern`, once there is one; rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    return this.#waiters.waitFor(
      () => this.lines.find((candidate) => pattern.test(candidate)),
      timeoutMs,
      () => `No log line like ${pattern} in:\n${this.lines.join("\n")}`,
    );
  }

  /** Gives the log back to the console. */
  [Symbol.dispose](): void {
    log.setSink(null);
  }
}
