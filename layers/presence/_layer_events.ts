/**
 * The presence events that only trackers send one another over the layer (a draining process's
 * handover), and the checks every field of a tracker event passes on arrival: it came over the
 * layer, so it may come from another version or be malformed.
 */
import type { TrackedConnection } from "./contract.ts";

export { PRESENCE_HANDOVER } from "./contract.ts";
/** Connections per handover event, so that one event stays small whatever the process held. */
export const HANDOVER_CHUNK = 100;

/** A connection as a handover event carries it: what is left of its grace period, in ms. */
export type HandedOver = TrackedConnection & { topic: string; graceMs: number };

/** A connection of a handover event, checked (it came over the layer); null when malformed. */
export function handedOver(value: unknown, graceMs: number): HandedOver | null {
  if (typeof value !== "object" || value === null) return null;
  const { username, connectionId, meta, topic, graceMs: left } = value as Record<string, unknown>;
  if (typeof username !== "string" || typeof connectionId !== "string") return null;
  if (typeof topic !== "string" || typeof left !== "number" || !Number.isFinite(left)) return null;
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) return null;
  // Never longer than this process's own grace period.
  const ms = Math.min(Math.max(0, left), graceMs);
  return { username, connectionId, meta: meta as TrackedConnection["meta"], topic, graceMs: ms };
}

/** The strings of a list field (a diff's joins or leaves); anything else is dropped. */
export function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
}
