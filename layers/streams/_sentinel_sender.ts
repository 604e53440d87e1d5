/**
 * Sends a Sentinel connection's scripts so that they are written to the master in the order they
 * were called, and so that one its caller gave up on unwritten is never written later.
 *
 * Why: node-redis's Sentinel client does not queue a command that finds the master connection
 * down; it holds it while it looks for a master, then hands it to the master's connection. The
 * command that started the search is handed over a few steps after the ones that only waited for
 * it, so they overtake it: a fault run (master SIGKILLed under chat load) stored one sender's
 * message after the 16 it sent next. Held longer than the caller's timeout, it was still written
 * then, though its sender had been told the publish was not confirmed.
 *
 * How: each command is given node-redis's `abortSignal` option, which drops a command from its
 * connection's queue while it is still unwritten, and which node-redis reads at the moment it
 * queues the command. That moment is when the command's place is known: one queued after a
 * later call, or after its caller's timeout, is given a signal aborted already, and node-redis
 * refuses it before writing it ({@linkcode NotSentError}).
 *
 * Reads are not ordered: a read called while the master was away may be handed over after a
 * later command (a later read, say, of a search for an unanswered publish), and refusing it then
 * would fail a client's recovery for nothing. It is written whenever it is handed over, and a
 * write called before it may then be stored after it was read, as if the read had been called
 * first. A read never moves the place the writes are kept in order by.
 */
import { AbortError } from "redis";
import { NoAnswerInTimeError } from "../../storage/with_timeout.ts";

/** A script node-redis never wrote and never will: Redis did not run it. */
export class NotSentError extends Error {
  override name = "NotSentError";
}

/** The part of node-redis's Sentinel client the sender uses. */
export interface SentinelCommands {
  sendCommand(
    isReadonly: boolean,
    args: string[],
    options: { abortSignal?: AbortSignal },
  ): Promise<unknown>;
}

/** How one command is sent: `read` for a command that writes nothing (see the module doc). */
export interface SendOptions {
  read?: boolean;
}

/**
 * Sends commands to the Sentinels' master: each resolves with Redis's answer; rejects with
 * {@linkcode NotSentError} when it was never written, or a `NoAnswerInTimeError` carrying
 * `noAnswer` when it was written and no answer came within `timeoutMs`.
 */
export function sentinelSender(
  sentinel: SentinelCommands,
  noAnswer: string,
): (command: string[], timeoutMs: number, sendOptions?: SendOptions) => Promise<unknown> {
  let called = 0;
  // The latest call node-redis queued on the master's connection.
  let queuedLast = 0;
  const refused = AbortSignal.abort();
  return async (command, timeoutMs, sendOptions) => {
    const read = sendOptions?.read === true;
    const call = read ? 0 : ++called;
    const controller = new AbortController();
    let queued = false;
    let given: AbortSignal | undefined;
    const options = {
      // Read once, as node-redis queues the command (see the module doc).
      get abortSignal(): AbortSignal {
        if (given !== undefined) return given;
        if (controller.signal.aborted || (!read && call < queuedLast)) return given = refused;
        queued = true;
        if (!read) queuedLast = call;
        return given = controller.signal;
      },
    };
    const sent = sentinel.sendCommand(false, command, options);
    const timers: ReturnType<typeof setTimeout>[] = [];
    const timedOut = new Promise<never>((_, reject) => {
      timers.push(setTimeout(() => {
        // Unqueued, it never will be; queued but unwritten, it leaves the queue now.
        controller.abort();
        if (!queued) {
          reject(new NotSentError("no master connection took it in time"));
          return;
        }
        // An unwritten one rejects with AbortError within this turn: that answer comes first.
        timers.push(setTimeout(() => reject(new NoAnswerInTimeError(noAnswer)), 0));
      }, timeoutMs));
    });
    try {
      return await Promise.race([sent, timedOut]);
    } catch (error) {
      if (error instanceof AbortError) {
        throw new NotSentError(
          queued ? "no answer in time, and never written" : "a later command was written first",
          { cause: error },
        );
      }
      throw error;
    } finally {
      for (const timer of timers) clearTimeout(timer);
      sent.catch(() => {}); // a refusal after the timeout is expected
    }
  };
}
