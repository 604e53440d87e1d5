/**
 * The admin page: one row per process, kept live from `WS /ws/admin/`. Each process sends its
 * row every second while the page is open; a row not heard from for 5 s is removed (its
 * process stopped, or left the layer).
 */
import { LiveSocket } from "/channels/live_socket.js";
import { groupsTotal } from "./admin_totals.js";
import { showConnectionState } from "./page_text.js";

const STALE_MS = 5_000;
/** @type {Map<string, Record<string, any>>} */
const rows = new Map();
/** @type {Map<string, number>} when each row was last heard, in this page's clock */
const heard = new Map();

const $ = (id) => document.getElementById(id);

function cell(text) {
  const td = document.createElement("td");
  td.textContent = String(text);
  return td;
}

function fixed(value, digits = 1) {
  return Number(value).toFixed(digits);
}

function uptime(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${fixed(seconds / 3600)} h`;
}

function fillTable(id, lines) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(
    ...lines.map((values) => {
      const tr = document.createElement("tr");
      tr.append(...values.map(cell));
      return tr;
    }),
  );
}

function render() {
  const now = Date.now();
  for (const [process, at] of heard) {
    if (now - at > STALE_MS) {
      heard.delete(process);
      rows.delete(process);
    }
  }
  const list = [...rows.values()].sort((a, b) => a.process.localeCompare(b.process));
  fillTable(
    "processes",
    list.map((row) => [
      row.process,
      row.connections,
      row.groups,
      fixed(row.inPerSecond),
      fixed(row.outPerSecond),
      fixed(row.deliveriesPerSecond),
      fixed(row.dropsPerSecond),
      row.dropped,
      fixed(row.rssBytes / (1024 * 1024)),
      fixed(row.eventLoopLagMs),
      uptime(row.at - row.startedAt),
    ]),
  );
  const routes = new Map();
  const groups = new Map();
  for (const row of list) {
    for (const { route, open } of row.routes) routes.set(route, (routes.get(route) ?? 0) + open);
    for (const { group, members } of row.largestGroups) {
      groups.set(group, (groups.get(group) ?? 0) + members);
    }
  }
  fillTable("routes", [...routes].sort((a, b) => b[1] - a[1]));
  fillTable("groups", [...groups].sort((a, b) => b[1] - a[1]).slice(0, 20));
  const sum = (key) => list.reduce((total, row) => total + row[key], 0);
  $("total-connections").textContent = String(sum("connections"));
  $("total-groups").textContent = groupsTotal(list, groups.size, sum("groups"));
  $("total-in").textContent = fixed(sum("inPerSecond"));
  $("total-out").textContent = fixed(sum("outPerSecond"));
  $("total-drops").textContent = fixed(sum("dropsPerSecond"));
  $("total-processes").textContent = String(list.length);
}

const state = $("connection-state");
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const live = new LiveSocket(`${scheme}//${location.host}/ws/admin/`, {
  // A connection that died without a close is found within 35 s and made again.
  heartbeat: { idleMs: 25_000, timeoutMs: 10_000 },
  onState: (name, text) => showConnectionState(state, name, text),
  onFrame(frame) {
    if (frame.type !== "admin.row" || typeof frame.process !== "string") return;
    rows.set(frame.process, frame);
    heard.set(frame.process, Date.now());
    render();
  },
  onClose(event) {
    // 403 before the socket opens shows as 1006; a logged-out staff user stops here.
    if (event.code === 4001) return { stop: "Logged out" };
    return undefined;
  },
});
live.start();
setInterval(render, 1000);
