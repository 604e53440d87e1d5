/**
 * The subprotocol a consumer accepts in `connect` (`conn.acceptSubprotocol`), checked against
 * what the client offered and kept until the route answers the handshake with it
 * (`websocket_route.ts`), which asks `answeredSubprotocol` what the 101 names. Separate from
 * the connection (`_connection.ts`) because it is the handshake's business: the connection only
 * says whether that answer has gone yet.
 */
import type { Connection } from "./consumer.ts";
import { BATCH_PROTOCOL } from "./_frame_batch.ts";
import { denoCanAnswer } from "./handshake.ts";
import { log, oneLine, quoteClipped } from "../telemetry/log.ts";
import { shownClient } from "./_shown_client.ts";

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

/**
 * The subprotocol the 101 to `request` names: `connection`'s consumer's choice, else batching's
 * when the client offered it (`batchOffered`); `undefined` for none.
 */
export function answeredSubprotocol(
  request: Request,
  connection: Connection,
  { batchOffered }: { batchOffered: boolean },
): string | undefined {
  const scope = connection.scope;
  const protocol = acceptedSubprotocols.get(connection) ??
    (batchOffered ? BATCH_PROTOCOL : undefined);
  acceptedSubprotocols.delete(connection);
  if (protocol === undefined || denoCanAnswer(request, protocol)) return protocol;
  log.warn(
    oneLine(
      `The 101 of ${scope.path} [${
        shownClient(scope.client, scope.peer)
      }] names no subprotocol, not ${
        JSON.stringify(protocol)
      }: Deno answers only an offer whose names are separated by ", ", and this one is ${
        quoteClipped(request.headers.get("sec-websocket-protocol"))
      }`,
    ),
  );
  return undefined;
}
