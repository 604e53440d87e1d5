/**
 * `WS /ws/myapp/<user_id>/`: the AuthMiddlewareStack echo found in many Django Channels posts.
 * An anonymous user is refused at the handshake (HTTP 403, as Channels answers a close before
 * accept); a signed-in user gets `You said: <text>` as a plain text frame for every text frame.
 *
 * No single original was found (see the README): this is the common form of the snippet. The
 * `user_id` path segment is taken as the snippets take it, and not compared with the user.
 */
import type { Consumer } from "../mod.ts";

/** Replies `You said: <text>` to a signed-in user. */
export const authEchoConsumer: Consumer = (conn) => ({
  connect() {
    // The route also says loginRequired: this keeps the consumer safe on any route.
    if (!conn.scope.user.isAuthenticated) return false;
  },
  receive(text) {
    conn.send(`You said: ${text}`);
  },
});
