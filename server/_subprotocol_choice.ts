/**
 * The subprotocol a consumer accepts in `connect` (`conn.acceptSubprotocol`), checked against
 * what the client offered and kept until the route answers the handshake with it
 * (`websocket_route.ts`). Separate from the connection (`_connection.ts`) because it is the
 * handshake's business: the connection only says whether that answer has gone yet.
 */
import type { Connection } from "./consumer.ts";

/**
 * The subprotocol a consumer accepted in `connect`, by connection, until the route answers the
 * handshake with it: kept here rather than in a field every idle socket would carry.
 */
export const acceptedSubprotocols: WeakMap<Connection, string> = new WeakMap();

/**
 * Records `name` as `conn`'s subprotocol; throws when the handshake was `answered` already (the
 * socket is upgraded, or the connection closed) or when the client did not offer `name`.
 */
export function chooseSubprotocol(
  conn: Connection,
  name: string,
  answered: boolean,
): void {
  if (answered) {
    throw new Error("acceptSubprotocol() answers the handshake: call it in connect");
  }
  const offered = conn.scope.subprotocols;
  if (!offered.includes(name)) {
    throw new TypeError(
      `The client did not offer the subprotocol ${JSON.stringify(name)} (it offered ${
        offered.length === 0 ? "none" : offered.map((one) => JSON.stringify(one)).join(", ")
      })`,
    );
  }
  acceptedSubprotocols.set(conn, name);
}
