/**
 * The path functions of the platform the server runs on, from the std library's POSIX and
 * Windows modules, chosen by `Deno.build.os`.
 *
 * Not `@std/path` itself: its npm build decides the platform at import by reading
 * `process.platform`, and the first read of `process` makes Deno set up its Node.js `process`
 * for the rest of the run (about 0.75 MiB of heap more for the site; with `LAYER=redis`,
 * node-redis sets it up anyway). Under the bench's rooms load a raw Deno server that only read
 * `process.platform` used 2–3% more CPU per delivery; `tests/server/node_process_test.ts`
 * keeps the default server from setting it up again.
 */
import * as posix from "@std/path/posix";
import * as windows from "@std/path/windows";

const platform = Deno.build.os === "windows" ? windows : posix;

/** Joins path segments with the platform's separator, normalised. */
export const join: (...segments: string[]) => string = platform.join;
/** The extension of a path's last segment, with its dot (`""` when none). */
export const extname: (path: string) => string = platform.extname;
/** The platform's path separator. */
export const SEPARATOR: string = platform.SEPARATOR;
