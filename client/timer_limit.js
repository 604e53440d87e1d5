/**
 * The longest wait a timer keeps: `setTimeout` fires a longer one (2^31 ms, about 24.8 days, or
 * more) at once, which would turn a long wait into none. Every wait the client is given is
 * checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
