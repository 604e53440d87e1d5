/**
 * A send to a named channel that Redis was written and did not answer (paused, a failover's
 * stall): its script may have queued the event, so a worker may still run it. Told "not sent",
 * a sender would send it again, to run twice; it is told "not confirmed" instead.
 */
import { NoAnswerInTimeError } from "../storage/with_timeout.ts";
import { PublishUnconfirmedError } from "./streams/contract.ts";

/**
 * `error` as a {@linkcode PublishUnconfirmedError} when it is a bounded command's timeout (its
 * cause, as the layers' `run` and `#command` wrap it); else `error` itself.
 */
export function unansweredSendError(error: unknown, name: string): unknown {
  if (!(error instanceof Error) || !(error.cause instanceof NoAnswerInTimeError)) return error;
  return new PublishUnconfirmedError(
    `Sent to the named channel "${name}", but no answer came: a worker may still take it`,
    { cause: error },
  );
}
