/**
 * The errors of the streams' own Redis connection (`_resp_connection.ts`): a command written and
 * not answered, and one refused or dropped while the connection is down. Both say Redis is away
 * (`storage/unavailable.ts` names them so, for a 503), not that the command was wrong.
 */

/**
 * A command that was written, or may have been, whose answer will not come (the connection was
 * lost or closed, or the answer was late): Redis may have run it.
 */
export class UnansweredError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnansweredError";
  }
}

/**
 * A command refused or dropped because the connection is down (lost, and reconnecting): Redis is
 * away, not the command wrong (`storage/unavailable.ts` names it so, for a 503).
 */
export class RedisConnectionLostError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisConnectionLostError";
  }
}
