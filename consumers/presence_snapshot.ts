/**
 * The one list of users a presence view starts from, shared by the page that renders it and
 * the sockets that send it as their first frame, so the two can never disagree.
 */

/** One user in a presence list. */
export interface PresenceUser {
  username: string;
  online: boolean;
}

/**
 * Every user of `known` (in its order) with their status, then anyone online who is missing
 * from it (signed up a moment ago, or a chat room's members when `known` is empty), sorted.
 * `me` counts as online: its own join may still be inside the coalescing window.
 */
export function presenceSnapshot(
  known: readonly string[],
  online: readonly string[],
  me: string | null = null,
): PresenceUser[] {
  const present = new Set(online);
  if (me !== null) present.add(me);
  const names = new Set(known);
  const extra = [...present].filter((name) => !names.has(name)).sort();
  return [...known, ...extra].map((username) => ({ username, online: present.has(username) }));
}
