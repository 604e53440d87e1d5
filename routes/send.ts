/**
 * The site's send endpoint, `POST /_send/` (the framework's `sendRoutes`): `deno task send` uses
 * it when the layer is in this process; with Redis it publishes directly. A `chat.message` to a
 * chat room's group goes into the room's stream, completed as the chat consumer completes
 * messages from outside: it gets an offset (the answer carries `offset` and `epoch`) and clients
 * that reconnect recover it. A room's group written otherwise (its name in decomposed Unicode)
 * is the room's.
 */
import { type AppRoute, type Config, type OutsideSendRule, sendRoutes } from "../mod.ts";
import { canonicalGroup, chatNaming, storedFromOutside } from "../consumers/chat_rooms.ts";

// What of an event sent from outside the chat takes: a chat message to a room is stored.
const chatOutsideSend: OutsideSendRule = (asked, event, services) => {
  const naming = chatNaming(services.layer);
  const group = canonicalGroup(naming, asked);
  const stored = storedFromOutside(naming, group, event);
  if (stored === null) return { group };
  if ("refused" in stored) return stored;
  return { group, stream: stored.message, retention: services.config.historyWindow };
};

/** `POST /_send/`, only when a token is configured: it sends as the server. */
export function siteSendRoutes(config: Config): AppRoute[] {
  return sendRoutes(config, { outside: chatOutsideSend });
}
