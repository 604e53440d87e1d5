/**
 * The group of a browser's anonymous sockets, named by its CSRF cookie: the one thing that
 * tells a browser no session names yet. A log-in in that browser tells the group, so that its
 * pages reconnect signed in (`server/_browser_socket.ts`). The name holds a hash of the secret,
 * never the secret: group names are logged, and stored in Redis.
 */

const BROWSER_GROUP_PREFIX = "browser.";

/** The group of the anonymous sockets of the browser whose CSRF secret is `csrfSecret`. */
export async function browserGroup(csrfSecret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(csrfSecret));
  return `${BROWSER_GROUP_PREFIX}${new Uint8Array(digest).toHex().slice(0, 32)}`;
}

/** True for a browser's group (see {@linkcode browserGroup}). */
export function isBrowserGroup(group: string): boolean {
  return group.startsWith(BROWSER_GROUP_PREFIX);
}
