// The presence client. It keeps its user online while the page is open, over
// ws(s)://<host>/ws/presence/state/, and keeps the page's list of users live: the full state on every
// (re)connect, then diffs. On a page without the list it only holds the socket (`?list=0`).
// User text reaches the page through textContent only, never as markup.
import { LiveSocket } from "/channels/live_socket.js";
import { askAboutAddress } from "/channels/address_check.js";
import { element, isolated, showConnectionState, userText } from "./page_text.js";

const LOGGED_OUT = 4001;
const MAX_FEED = 50;
// How long the question whether the server would take the page back may take.
const ASK_TIMEOUT_MS = 10_000;
const LOG_IN_AGAIN = "Log in again to see who is online.";
const STILL_LOGGED_OUT = `Still logged out. ${LOG_IN_AGAIN}`;

const list = document.getElementById("presence-list");
const feed = document.getElementById("presence-feed");
// Where the feed is read out from: a wrapper, so the feed stays a list.
const feedLog = document.getElementById("presence-feed-log");
const count = document.getElementById("online-count");
// On other pages (a chat room) the connection label is theirs, not ours.
const stateLabel = list ? document.getElementById("connection-state") : null;

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socketUrl = `${scheme}//${location.host}/ws/presence/state/${list ? "" : "?list=0"}`;
/** Whom the page was drawn for. */
const openedAs = list?.dataset.me ?? "";
/** Whom the socket is signed in as: `openedAs`, unless a reconnect said otherwise. */
let me = openedAs;
const notice = document.getElementById("presence-notice");
/** The feed has this page's own user's arrival (the state frame counts them online before it). */
let myArrivalShown = false;

/** Logged out: the page tries again when it is looked at (see `tryAgainWhenSeen`). */
let loggedOut = false;
let lastState = "connecting";
/** The page's socket: a new one after a log-out, once the browser is signed in again. */
let live = null;

const openSocket = () =>
  live = new LiveSocket(socketUrl, {
    texts: { open: "Live" },
    // A connection that died without a close (Wi-Fi gone) is found within 35 s and made again,
    // rather than the list going stale while it says "Live".
    heartbeat: { idleMs: 25_000, timeoutMs: 10_000 },
    onState: setState,
    onFrame: receive,
    onClose(event) {
      // Logged out (in this tab or another): reconnecting would only be refused, and the list
      // would go stale, still saying this user is online: it is emptied.
      if (event.code === LOGGED_OUT) {
        list?.replaceChildren();
        if (count) count.textContent = "–";
        loggedOut = true;
        return { stop: `Logged out. ${LOG_IN_AGAIN}` };
      }
    },
  });

// The user most likely signs in again in another tab, which no socket of this page hears: when
// the page is looked at again, it asks the server whether a connection would be refused (a
// plain GET, not a handshake: one refused handshake would make the socket say "refused").
// Signed in, the page is live again (and says so if as someone else); still signed out, it
// waits for the next look.
let asking = false;
async function tryAgainWhenSeen() {
  if (!loggedOut || asking || lastState !== "closed") return;
  if (document.visibilityState !== "visible") return;
  asking = true;
  try {
    // Not `AbortSignal.timeout`: Safari before 16 has none, and the page would never retry.
    const asked = new AbortController();
    const timer = setTimeout(() => asked.abort(), ASK_TIMEOUT_MS);
    const { answered, refusal } = await askAboutAddress(fetch, socketUrl, asked.signal)
      .finally(() => clearTimeout(timer));
    if (!loggedOut || lastState !== "closed") return;
    if (answered && refusal === null) return openSocket().start();
    // Said again, so the label tells of this look, not only of the log-out; once: a live
    // region would read the same words out at every look.
    if (refusal !== null && stateLabel) {
      const text = refusal.refused === "login_required" ? STILL_LOGGED_OUT : refusal.text;
      if (stateLabel.textContent !== text) showConnectionState(stateLabel, "closed", text);
    }
  } finally {
    asking = false;
  }
}
document.addEventListener("visibilitychange", tryAgainWhenSeen);
addEventListener("focus", tryAgainWhenSeen);

function setState(state, text) {
  lastState = state;
  if (state === "open") loggedOut = false;
  // Logged out while the connection was down: the reconnects were refused, with no 4001.
  if (state === "closed" && live?.refused === "login_required") loggedOut = true;
  if (stateLabel) showConnectionState(stateLabel, state, text);
  // Closed for good (a log-out, a refusal the address check found): the list would go stale,
  // still showing this user online. A page shown again from the back/forward cache reconnects
  // and gets the whole list again.
  if (state === "closed" && list) {
    list.replaceChildren();
    if (count) count.textContent = "–";
    // The label says why it closed; whom it was signed in as no longer matters.
    if (notice) notice.hidden = true;
  }
}

// A log-in as someone else in another tab while the connection was down reaches this page as
// nothing but a reconnect: the server's `you` says whom the socket is signed in as now, so the
// list marks the right "(you)" and the page says it no longer shows the user it was opened for.
// Said on every state frame, not only when `you` changes: a close hides it (the label says
// why), and a page shown again from the back/forward cache is still someone else's.
function checkWhoIAm(you) {
  if (typeof you !== "string") return;
  me = you;
  if (!notice) return;
  notice.hidden = you === openedAs;
  if (notice.hidden) return;
  const text = `This page is now signed in as ${isolated(you)}, not as ${isolated(openedAs)} ` +
    "as it was opened. Reload the page to see who you are.";
  // Set again only when it changes: an alert is read out each time its text is set.
  if (notice.textContent !== text) notice.textContent = text;
}

function receive(frame) {
  if (!list) return;
  if (frame.type === "presence.state") showState(frame);
  else if (frame.type === "presence.diff") applyDiff(frame);
  else if (frame.type === "presence.user_added") ensureUser(String(frame.username), false);
}

function showState(frame) {
  checkWhoIAm(frame.you);
  const users = Array.isArray(frame.users) ? frame.users : [];
  list.replaceChildren(...users.map((user) => userItem(String(user.username), !!user.online)));
  const recent = Array.isArray(frame.recent) ? frame.recent : [];
  myArrivalShown = recent.some((event) => event?.username === me && event?.status === "connected");
  if (feed) {
    // The whole feed again (on every connect): shown, not read out; what happens next is.
    feedLog?.setAttribute("aria-live", "off");
    feed.replaceChildren(...recent.map(feedItem).reverse());
  }
  updateCount();
}

function applyDiff(frame) {
  const when = String(frame.time ?? new Date().toISOString());
  for (const name of strings(frame.joins)) setOnline(name, true, when);
  for (const name of strings(frame.leaves)) setOnline(name, false, when);
  updateCount();
}

// Diffs are absolute ("now online"): only a real change goes to the feed, and this page's own
// user's arrival, which the state frame already shows online but not yet in its recent events.
function setOnline(name, online, time) {
  const item = ensureUser(name, online);
  if (name === me && online && !myArrivalShown) {
    myArrivalShown = true;
    if (item.dataset.online === "true") {
      addEvent({ username: name, status: "connected", time });
      return;
    }
  }
  if (item.dataset.online === String(online)) return;
  item.dataset.online = String(online);
  item.querySelector(".presence-status").textContent = online ? "Online" : "Offline";
  addEvent({ username: name, status: online ? "connected" : "disconnected", time });
}

function ensureUser(name, online) {
  const existing = findUser(name);
  if (existing) return existing;
  const item = userItem(name, online);
  // Keep the server's order: case-insensitive by name.
  const key = name.toLowerCase();
  const before = [...list.children].find((li) => li.dataset.username.toLowerCase() > key);
  list.insertBefore(item, before ?? null);
  if (online) addEvent({ username: name, status: "connected", time: new Date().toISOString() });
  updateCount();
  return item;
}

function findUser(name) {
  return [...list.children].find((li) => li.dataset.username === name) ?? null;
}

function userItem(name, online) {
  const item = element("li", "presence-user");
  item.dataset.username = name;
  item.dataset.online = String(online);
  const dot = element("span", "presence-dot");
  dot.setAttribute("aria-hidden", "true");
  item.append(dot, userText("span", "presence-name", name));
  if (name === me) item.append(" ", element("span", "presence-you", "(you)"));
  item.append(" ", element("span", "presence-status", online ? "Online" : "Offline"));
  return item;
}

function feedItem(event) {
  const item = element("li", "presence-event");
  item.dataset.status = String(event.status);
  const text = element("span", "presence-event-text");
  text.append(userText("bdi", "", String(event.username)), ` ${event.status}`);
  item.append(text);
  const time = new Date(String(event.time));
  if (!Number.isNaN(time.getTime())) {
    const stamp = element("time", "", time.toLocaleTimeString());
    stamp.dateTime = time.toISOString();
    item.append(" ", stamp);
  }
  return item;
}

function addEvent(event) {
  if (!feed) return;
  if (feedLog && feedLog.getAttribute("aria-live") !== "polite") {
    feedLog.setAttribute("aria-live", "polite");
  }
  feed.prepend(feedItem(event));
  while (feed.childElementCount > MAX_FEED) feed.lastElementChild.remove();
}

function updateCount() {
  if (count) count.textContent = String(list.querySelectorAll('[data-online="true"]').length);
}

function strings(value) {
  return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
}

openSocket().start();
