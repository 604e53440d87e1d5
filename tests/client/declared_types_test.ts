/**
 * The client is JavaScript with JSDoc types; `client/mod.d.ts` declares it for Deno users and
 * for `deno doc`. Here `deno check` (run by `deno task test` and `deno task check`) holds each
 * declared export against what the JavaScript modules really export, so the two cannot drift
 * apart; the test itself checks that the entry exports what it declares, by name.
 */
import { assertEquals } from "@std/assert";
import * as declared from "../../client/mod.js";
import * as stream from "../../client/channels_client.js";
import * as live from "../../client/live_socket.js";
import * as backoff from "../../client/backoff.js";
import * as address from "../../client/address_check.js";

const implemented: typeof declared = {
  STATE_TEXT: stream.STATE_TEXT,
  HISTORY_SIZE: stream.HISTORY_SIZE,
  SendError: stream.SendError,
  connectStream: stream.connectStream,
  ChannelStream: stream.ChannelStream,
  ndjsonFrames: stream.ndjsonFrames,
  LiveSocket: live.LiveSocket,
  jsonObjects: live.jsonObjects,
  Backoff: backoff.Backoff,
  askAboutAddress: address.askAboutAddress,
};

Deno.test("the client's entry exports exactly what client/mod.d.ts declares", () => {
  assertEquals(Object.keys(declared).sort(), Object.keys(implemented).sort());
  for (const [name, value] of Object.entries(implemented)) {
    assertEquals(declared[name as keyof typeof declared], value, name);
  }
});

Deno.test("an onClose handler that only logs type-checks, as the runtime takes it", () => {
  // A named handler that returns nothing: the verdict is optional (`deno check` holds this).
  const logOnly = (event: declared.LiveClose): void => void event.code;
  const streamOptions: declared.StreamOptions = { onClose: logOnly };
  const socketOptions: declared.LiveSocketOptions = { onClose: logOnly };
  assertEquals([streamOptions.onClose, socketOptions.onClose], [logOnly, logOnly]);
});
