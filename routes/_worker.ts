/**
 * The entry point of one Worker of `deno task start --workers N`: it serves the site on the
 * shared port with `reusePort` until the parent asks it to stop.
 */
import { runWorker } from "../mod.ts";
import { startSite } from "./start.ts";

runWorker(startSite);
