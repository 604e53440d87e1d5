/**
 * The presence storm's baseline: the naive way to keep a user list live. Every connect and
 * every disconnect sends the whole list of online users to every socket. No login: the user
 * is `?user=NAME`. `deno run -A bench/naive_presence_server.ts --port 9000`
 */

/** Serves the naive presence protocol on `port` until the process ends. */
export function serveNaivePresence(port: number): Deno.HttpServer {
  const sockets = new Map<WebSocket, string>();
  const broadcast = (): void => {
    const online = [...new Set(sockets.values())].sort();
    const frame = JSON.stringify({ type: "presence.list", online });
    for (const socket of sockets.keys()) {
      if (socket.readyState === WebSocket.OPEN) socket.send(frame);
    }
  };
  return Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
    const user = new URL(request.url).searchParams.get("user");
    if (request.headers.get("upgrade") !== "websocket" || !user) {
      return new Response("WebSocket with ?user=NAME\n", { status: 400 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => {
      sockets.set(socket, user);
      broadcast();
    };
    socket.onclose = () => {
      sockets.delete(socket);
      broadcast();
    };
    return response;
  });
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--port");
  serveNaivePresence(at >= 0 ? Number(Deno.args[at + 1]) : 9000);
}
