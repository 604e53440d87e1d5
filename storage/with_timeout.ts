/**
 * What {@linkcode withTimeout} rejects with: a backend that gave no answer in time is
 * unavailable now (`unavailable.ts`), as one that refused the connection is.
 */
export class NoAnswerInTimeError extends Error {
  /** Names the error in its stack and in logs. */
  override name = "NoAnswerInTimeError";
}

/** Rejects with `message` when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerInTimeError(message)), ms);
  });
  return Promise.race([promise, timedOut]).finally(() => clearTimeout(timer));
}
