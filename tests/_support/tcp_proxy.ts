/**
 * A TCP proxy for tests that cut clients off and bring them back, as a load balancer or a
 * flaky network would: `cut()` drops every connection through it and refuses new ones;
 * `restore(port)` lets clients through again, to the same process or another one.
 *
 * @example
 * ```ts
 * await using proxy = startTcpProxy(serverA.port);
 * // a page opens proxy.httpUrl("/chat/lobby/"), then:
 * proxy.cut();
 * proxy.restore(serverB.port);
 * ```
 */

/** A running proxy; `await using` stops it. */
export interface TcpProxy {
  readonly port: number;
  /** `http://127.0.0.1:<proxy port>` + `path`. */
  httpUrl(path: string): string;
  /** Drops every open connection and refuses new ones until `restore`. */
  cut(): void;
  /**
   * Keeps the connections open but delivers nothing more either way, as a network that
   * stopped without a word, until `cut`.
   */
  hold(): void;
  /** Lets connections through again, to `targetPort` (default: the current target). */
  restore(targetPort?: number): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a proxy on a free port of 127.0.0.1 in front of `targetPort`. */
export function startTcpProxy(targetPort: number): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let target = targetPort;
  let isCut = false;
  let held = false;
  const closeQuietly = (conn: Deno.Conn) => {
    open.delete(conn);
    try {
      conn.close();
    } catch {
      // closed already
    }
  };
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      const unlessHeld = new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, out) => void (held || out.enqueue(chunk)),
      });
      await from.readable.pipeThrough(unlessHeld).pipeTo(to.writable, { preventClose: true });
    } catch {
      // either side went away
    }
    closeQuietly(from);
    closeQuietly(to);
  };
  const serve = async (client: Deno.Conn) => {
    open.add(client);
    if (isCut) return closeQuietly(client);
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
    } catch {
      return closeQuietly(client);
    }
    open.add(upstream);
    if (isCut) return [client, upstream].forEach(closeQuietly);
    await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    httpUrl: (path) => `http://127.0.0.1:${port}${path}`,
    hold() {
      held = true;
    },
    cut() {
      isCut = true;
      held = false;
      for (const conn of [...open]) closeQuietly(conn);
    },
    restore(targetPort = target) {
      target = targetPort;
      isCut = false;
    },
    async [Symbol.asyncDispose]() {
      isCut = true;
      for (const conn of [...open]) closeQuietly(conn);
      listener.close();
      await accepting;
    },
  };
}
