/**
 * Test support for apps on Channels for Deno, like Django Channels' `channels.testing`: the
 * {@linkcode Communicator} drives a consumer through an app's real handshake without a port.
 *
 * @example
 * ```ts
 * import { type Consumer, createApp, socket } from "@channels/deno";
 * import { Communicator, createTestServices, testUpgrade } from "@channels/deno/testing";
 *
 * const echo: Consumer = (conn) => ({ receive: (text) => conn.send(`You said: ${text}`) });
 * await using services = await createTestServices();
 * const app = createApp({ routes: [socket("/ws/echo/", echo)], services, upgrade: testUpgrade });
 * const comm = new Communicator(app, "/ws/echo/");
 * await comm.connect();
 * comm.send("hi");
 * await comm.receive(); // "You said: hi"
 * await comm.disconnect();
 * ```
 *
 * @module
 */
export {
  Communicator,
  type CommunicatorOptions,
  type ConnectResult,
  type ConsumerTarget,
  HOOK_TIMEOUT_MS,
  RECEIVE_TIMEOUT_MS,
  testUpgrade,
} from "./testing/communicator.ts";
export { createTestServices, type TestServices } from "./testing/services.ts";
export { FakeSocket } from "./testing/fake_socket.ts";
export { loggedInHeaders } from "./testing/logged_in.ts";
/**
 * What a communicator's `connect`, `receive`, `waitForClose` and `disconnect` reject with when
 * their time is up, as Channels' communicator raises `asyncio.TimeoutError`.
 */
export { NoAnswerInTimeError } from "./storage/with_timeout.ts";
