// @ts-self-types="./mod.d.ts"
/**
 * The browser and Deno client this package ships: a message stream that reconnects, recovers
 * what it missed and sends with acknowledgement (`connectStream`), the reconnecting socket it
 * is built on (`LiveSocket`, for sockets that are not streams, such as a presence list), and
 * their backoff. Plain ES modules, no build step and no dependencies.
 *
 * In Deno, import it as `@channels/deno/client`. In a page, serve the files with the
 * framework's `clientRoutes()` and import them by URL:
 *
 * @example
 * ```js
 * import { connectStream } from "/channels/channels_client.js";
 * import { LiveSocket } from "/channels/live_socket.js";
 *
 * const stream = connectStream("/ws/chat/lobby/", { onMessage: (message) => show(message) });
 * const users = new LiveSocket(`ws://${location.host}/ws/users/`, { onFrame: (f) => list(f) });
 * users.start();
 * ```
 *
 * @module
 */
export * from "./channels_client.js";
export { jsonObjects, LiveSocket } from "./live_socket.js";
export { Backoff } from "./backoff.js";
export { askAboutAddress } from "./address_check.js";
