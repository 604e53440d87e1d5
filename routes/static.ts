import type { Handler } from "../server/context.ts";
import { staticFileHandler } from "../server/static_files.ts";
import { fromFileUrl } from "@std/path";

/** The project's `static/` folder, found from this module so the working directory does not matter. */
export const STATIC_ROOT: string = fromFileUrl(new URL("../static/", import.meta.url));

/** `GET /static/*`: the files of `static/`. */
export const staticFiles: Handler = staticFileHandler(STATIC_ROOT, { prefix: "/static/" });
