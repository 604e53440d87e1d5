/**
 * The baseline: a raw Deno broadcast server with no framework, speaking the chat's wire
 * protocol. A client of `/ws/chat/<room>/` sends `{"message": "..."}`; every socket in the room
 * gets `{"type":"chat.message","id","room","message","author","time"}`, serialised once.
 * No limits, no history, no queues: unsent frames wait in memory without bound.
 *
 * It also relays, as the group chat by URL does: a text frame to `/ws/<group>/` (word
 * characters) goes as the same text to every socket of that group, the sender's included.
 *
 * Run: `deno run -A bench/raw_server.ts --port 0` (prints the port it listens on).
 */

const PATH = /^\/ws\/chat\/([^/]+)\/$/;
const RELAY_PATH = /^\/ws\/(\w+)\/$/;

/** Serves the raw broadcast server on `port` (0: any free port) of 127.0.0.1. */
export function serveRaw(port: number, onListen: (port: number) => void): Deno.HttpServer {
  const rooms = new Map<string, Set<WebSocket>>();
  let counter = 0;

  function broadcast(room: string, sockets: Set<WebSocket>, data: string): void {
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      return;
    }
    const message = (value as { message?: unknown } | null)?.message;
    if (typeof message !== "string") return;
    const now = Date.now();
    const text = JSON.stringify({
      type: "chat.message",
      id: `${now.toString(36)}-${(++counter).toString(36)}`,
      room,
      message,
      author: "Anonymous",
      time: new Date(now).toISOString(),
    });
    for (const socket of sockets) {
      if (socket.readyState === WebSocket.OPEN) socket.send(text);
    }
  }

  return Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: (addr) => onListen(addr.port),
  }, (request) => {
    const path = new URL(request.url).pathname;
    const match = PATH.exec(path);
    const relay = match === null ? RELAY_PATH.exec(path) : null;
    if (match === null && relay === null) return new Response("Not found\n", { status: 404 });
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("WebSocket only\n", { status: 426 });
    }
    // Relayed groups and chat rooms never share a name.
    const room = relay !== null ? `relay:${relay[1]}` : decodeURIComponent(match![1]);
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => {
      let sockets = rooms.get(room);
      if (sockets === undefined) rooms.set(room, sockets = new Set());
      sockets.add(socket);
    };
    socket.onmessage = (event) => {
      const sockets = rooms.get(room);
      if (sockets === undefined || typeof event.data !== "string") return;
      if (relay !== null) {
        for (const socket of sockets) {
          if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
        }
      } else broadcast(room, sockets, event.data);
    };
    socket.onclose = () => {
      const sockets = rooms.get(room);
      sockets?.delete(socket);
      if (sockets?.size === 0) rooms.delete(room);
    };
    socket.onerror = () => {};
    return response;
  });
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--port");
  const port = at >= 0 ? Number(Deno.args[at + 1]) : 0;
  const server = serveRaw(port, (listening) => console.log(listening));
  Deno.addSignalListener("SIGTERM", () => server.shutdown().then(() => Deno.exit(0)));
}
