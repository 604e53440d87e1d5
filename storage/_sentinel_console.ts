/**
 * node-redis 5.12's Sentinel client prints every failed rediscovery with `console.log(error)`
 * (its connect loop, once it had been ready): with every Sentinel away, a five-line stack
 * ("None of the sentinels are available") once a second per connection, to stdout, whatever
 * LOG_LEVEL says. It has no option or event that would take it instead (redis/node-redis#3237);
 * the connection's outage is logged by its machine already, once.
 *
 * So while a Sentinel client is open, `console.log` is wrapped: an Error printed from node-redis'
 * Sentinel module becomes one debug line of the process's logger; everything else (the app's
 * own `console.log`, the logger's own lines) is printed as before. The last client closed puts
 * the console back as it was.
 */
import { log } from "../telemetry/log.ts";

// node-redis' Sentinel module, as a stack frame names it (from Deno's npm cache or node_modules).
const SENTINEL_MODULE = /@redis[\\/]client[\\/].*[\\/]sentinel[\\/]/;

let holders = 0;
// What `divert` passes everything else on to. Never cleared: code may have kept `divert` (as
// `const out = console.log`) and call it after the last client let go.
let printed: typeof console.log = console.log;

function divert(...args: unknown[]): void {
  const [error] = args;
  if (
    holders > 0 && args.length === 1 && error instanceof Error && calledFromSentinelModule()
  ) {
    log.debug(`Redis Sentinel client: ${error.name}: ${error.message}`); // on one line
    return;
  }
  printed(...args);
}

// The frame below `divert` is whoever called console.log.
function calledFromSentinelModule(): boolean {
  const caller = new Error().stack?.split("\n")[3] ?? "";
  return SENTINEL_MODULE.test(caller);
}

/**
 * Routes node-redis' Sentinel prints to the logger until the returned function is called (once
 * per client: the console goes back when every client that asked has let go).
 */
export function divertSentinelPrints(): () => void {
  // Wrapped whenever `console.log` is not ours: a wrapper put over ours since (it stays, and
  // ours under it passes everything on) or a `console.log` put back over it (a test's stub).
  if (holders++ === 0 && console.log !== divert) {
    printed = console.log;
    console.log = divert;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders > 0 || console.log !== divert) return;
    console.log = printed;
  };
}
