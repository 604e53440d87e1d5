/**
 * `WS /ws/<group>/` (`<group>` of word characters): the group chat of Wu Peiqi's Django
 * WebSocket notes (`re_path(r'ws/(?P<group>\w+)/$', ...)`). A text frame goes out as the same
 * raw text to every socket of the group, the sender's included; the text `关闭` ("close")
 * makes the server close that socket normally (1000) instead. Anyone may connect.
 */
import { type Consumer, log, ProtocolError } from "../mod.ts";

/** The text that makes the server close the socket. */
export const CLOSE_WORD = "关闭";
/**
 * Longest group id, in characters (Django's had no limit): `relay.<id>` stays a group name
 * every layer takes, Channels' (under 100 characters, with `LAYER=channels_redis`) included.
 */
export const MAX_GROUP_ID = 99 - relayGroup("").length;
/** The layer event of a relayed text. */
export const RELAY_MESSAGE = "relay.message";

const GROUP_ID = /^\w+$/;

/** The layer group of a group id. */
export function relayGroup(group: string): string {
  return `relay.${group}`;
}

/** Relays raw text to the URL's group. */
export const groupRelayConsumer: Consumer = (conn) => {
  const id = conn.scope.params.group ?? "";
  const group = relayGroup(id);
  return {
    async connect() {
      // Refused with why: the client and the log would read only "said no".
      if (!GROUP_ID.test(id)) {
        throw new ProtocolError("A group id is letters, digits and underscores only");
      }
      if (id.length > MAX_GROUP_ID) {
        throw new ProtocolError(`A group id is at most ${MAX_GROUP_ID} characters long`);
      }
      await conn.groupAdd(group);
    },
    async receive(text) {
      if (text === CLOSE_WORD) {
        conn.close();
        return;
      }
      await conn.groupSend(group, { type: RELAY_MESSAGE, text });
    },
    events: {
      [RELAY_MESSAGE]: (event) => {
        if (typeof event.text === "string") conn.send(event.text);
        else warnNoText(event, group);
      },
    },
  };
};

// Events already said to have no text: one line per event, not one per member.
const warnedNoText = new WeakSet<object>();

// A relay event from outside (a Django `group_send`) without a string `text`: its members would
// get `undefined` or `[object Object]`.
function warnNoText(event: object, group: string): void {
  if (warnedNoText.has(event)) return;
  warnedNoText.add(event);
  log.warn(`Ignored a "${RELAY_MESSAGE}" event to "${group}": its "text" is not a string`);
}
