/**
 * The lean Redis connection's socket (`_resp_connection.ts`): dialing one server over TCP or
 * TLS within a time limit, and reading its replies off the socket as they come.
 */
import { parse, type RespReply } from "./_resp_codec.ts";

const READ_BUFFER_BYTES = 64 * 1024;

/** Connects to the server of a `redis://` or `rediss://` URL; rejects after `timeoutMs`. */
export async function dial(url: URL, timeoutMs: number): Promise<Deno.Conn> {
  const secure = url.protocol.toLowerCase() === "rediss:";
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = Number(url.port || 6379);
  const connecting = secure
    ? Deno.connectTls({ hostname, port })
    : Deno.connect({ hostname, port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no answer in time")), timeoutMs);
  });
  try {
    return await Promise.race([connecting, timedOut]);
  } catch (error) {
    connecting.then((late) => late.close(), () => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Hands every reply read from `conn` to `onReply`, in order (an error reply as an `Error`),
 * until the socket fails or Redis closes it: then it rejects, saying which.
 */
export async function readReplies(
  conn: Deno.Conn,
  onReply: (reply: RespReply | Error) => void,
): Promise<never> {
  let buffer = new Uint8Array(READ_BUFFER_BYTES);
  let start = 0;
  let end = 0;
  for (;;) {
    if (end === buffer.length) {
      // Full: move what is unread to the front, and grow when that frees too little.
      const unread = end - start;
      const next = unread > buffer.length / 2 ? new Uint8Array(buffer.length * 2) : buffer;
      next.set(buffer.subarray(start, end));
      buffer = next;
      start = 0;
      end = unread;
    }
    const read = await conn.read(buffer.subarray(end));
    if (read === null) throw new Error("Redis closed the connection");
    end += read;
    for (let parsed = parse(buffer, start, end); parsed; parsed = parse(buffer, start, end)) {
      start = parsed.next;
      onReply(parsed.value);
    }
    if (start === end) start = end = 0;
  }
}
