/// <reference lib="deno.worker" />
// Opens each database it is sent, in order, with the project's `openKv`; answers the errors.
import { openKv } from "../../storage/kv_retry.ts";

self.onmessage = async (event: MessageEvent<string[]>) => {
  const errors: string[] = [];
  for (const path of event.data) {
    try {
      (await openKv(path)).close();
    } catch (error) {
      errors.push(String(error));
    }
  }
  self.postMessage(errors);
};
