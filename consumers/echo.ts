import type { Consumer } from "../mod.ts";

/** Replies "You said: <text>"; the text `close` makes the server close the socket. */
export const echoConsumer: Consumer = (conn) => ({
  receive(text) {
    if (text === "close") {
      conn.close();
      return;
    }
    conn.send(`You said: ${text}`);
  },
  receiveBytes(data) {
    conn.send(data);
  },
});
