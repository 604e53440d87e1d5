// The chat room client. It speaks the Django Channels tutorial's protocol over
// ws(s)://<host>/ws/chat/<room>/ through channels_client.js: it shows its connection state,
// reconnects by itself with backoff, and on every reconnect recovers what it missed (the
// server replays it by offset, so nothing is shown twice or lost). When that is not possible
// (away too long, or the room's history was lost), it says so and shows the room's last 50.
// Messages go out with an ack: one the server refuses stays in the log marked "Not sent".
// It asks for the room's presence frames (`?presence=1`): a "presence.state" on every
// (re)connect replaces the "In this room" list, and each "presence.diff" updates it.
import { connectStream } from "/channels/channels_client.js";
import { element, isolated, showConnectionState, userText } from "./page_text.js";

// A policy close (a flood, say) must not turn into a reconnect loop: start at about 4 s.
const POLICY_BACKOFF_ATTEMPTS = 3;
// Close codes whose reason is meant for the user.
const EXPLAINED_CODES = new Set([1003, 1007, 1008, 1009, 1011, 1013, 4001]);
const MAX_SHOWN = 1_000;
const NOTICE_MS = 10_000;
/** The close code of a session that ended (a log-out, here or in another tab). */
const SESSION_ENDED = 4001;
const SESSION_ENDED_NOTICE = "You were logged out: messages you send now go out as whoever " +
  "this browser is signed in as. Reload the page to see who that is.";
/** Shown when the page reconnected as someone else than it was opened as (see `checkWhoIAm`). */
const SWITCHED = "This page now writes as ";
// Not why: a log-in or log-out in another tab, or a page drawn while the sessions were away,
// look the same from here.
const switchedNotice = (now) =>
  `${SWITCHED}${isolated(now)}, not as ${isolated(me)} as it was opened. Reload the page to see ` +
  "who you are.";
/** Shown when a reconnect could not bring back everything the page missed. */
const NOT_RECOVERED = "Some messages could not be recovered. Showing the latest ones.";

const log = document.getElementById("chat-log");
const form = document.getElementById("message-form");
const input = document.getElementById("chat-message-input");
const button = document.getElementById("chat-message-submit");
const stateLabel = document.getElementById("connection-state");
const notice = document.getElementById("chat-notice");
const members = document.getElementById("room-members");

const room = log.dataset.room;
const me = members?.dataset.me ?? "";
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socketUrl = `${scheme}//${location.host}/ws/chat/${encodeURIComponent(room)}/?presence=1`;

const seen = new Set();
/** Whom the page came back as after a log-out's close; `null` until it is back. */
let cameBackAs = null;
/** Whether the room's first member list came (see `showMembers`). */
let membersListed = false;
// Set while the first list is not yet shown to a screen reader (see `showMembers`).
let firstListShowing = false;
let noticeTimer = 0;
/** What the user asked to send while offline; sent on open if it is still in the box. */
let pending = null;
/** Sends waiting for their ack; `echoed` once the room showed the same text by this user. */
const inFlight = new Set();
/** Sends the connection lost before the server answered: their echo may still come. */
const unconfirmed = [];
/**
 * After a complete recovery, the offset the replay reaches: once shown, a send the connection
 * lost that is not in it was never stored (the server stores a socket's frames in order, before
 * it answers). `null` while nothing is to be settled.
 */
let settleAt = null;

const stream = connectStream(socketUrl, {
  batch: true,
  onStateChange(state, text) {
    setState(state, text);
    if (state === "open") sendPending();
  },
  onRecovered({ complete, fresh, offset }) {
    if (!complete && !fresh) showNotice(NOT_RECOVERED, { sticky: true });
    settleAt = complete && !fresh ? offset : null;
    settleLost(stream.offset ?? 0);
  },
  onMessage(frame) {
    addMessage(frame);
    settleLost(frame.offset);
  },
  onFrame: receive,
  onClose(event) {
    if (event.code === SESSION_ENDED) {
      // The page still shows who it was opened as, but it reconnects as whoever the browser
      // is now (anonymous, or another user logged in from another tab): said until reloaded,
      // or until it is signed in as that user again (see `checkWhoIAm`).
      showNotice(SESSION_ENDED_NOTICE, { sticky: true });
      cameBackAs = null;
    } else if (EXPLAINED_CODES.has(event.code) && event.reason) {
      showNotice(`The server closed the connection: ${event.reason}`);
    }
    return event.code === 1008 ? { atLeastAttempts: POLICY_BACKOFF_ATTEMPTS } : {};
  },
});

function setState(state, text) {
  showConnectionState(stateLabel, state, text);
  form.dataset.state = state;
  // Not `aria-disabled`: offline, the button still works (the message waits for the connection).
  const offline = state !== "open";
  button.title = offline ? "Not connected: messages wait until the connection is back" : "";
}

function receive(frame) {
  if (frame.type === "error") return showNotice(String(frame.error ?? "Unknown error"));
  if (frame.type === "presence.state") {
    checkWhoIAm(frame.you);
    return showMembers(frame.users);
  }
  if (frame.type === "presence.diff") {
    announceMembers();
    return updateMembers(frame.joins, frame.leaves);
  }
  if (typeof frame.message === "string") addMessage(frame);
}

// The server says whom each (re)connected socket writes as: a log-in or log-out in another tab
// while the connection was down (no close reached this page to say so) makes it someone else,
// and every message typed here would go out under that name without a word. Said until the
// page is reloaded, and the list marks the right user as "(you)". A log-in in another tab
// reconnects an anonymous page (4002): it comes back signed in, and is told so here.
function checkWhoIAm(you) {
  if (typeof you !== "string" || !members) return;
  // Sends still in flight went out on this socket (a lost one fails them all), even one sent as
  // it opened, before this frame said whom it writes as: their echoes are by `you`.
  for (const entry of inFlight) entry.as = you;
  if (you !== members.dataset.me) markYou(you);
  // A page drawn anonymous has no presence script: signed in now, it keeps its user online on
  // the site, as every signed-in page does (a page that has it loaded imports nothing again).
  if (you !== me) import("./presence.js").catch(() => {});
  if (stickyNotice === SESSION_ENDED_NOTICE) {
    // A log-out's close told it already, in its own words: they stand while the page writes as
    // whoever it came back as, not once a log-in made it someone again.
    cameBackAs ??= you;
    if (you === cameBackAs && you !== me) return;
  }
  if (you !== me) {
    const text = switchedNotice(you);
    // Set again only when it changes: an alert is read out each time its text is set.
    return stickyNotice === text ? undefined : showNotice(text, { sticky: true });
  }
  // Back as the one it was opened as: what was said of another no longer holds.
  if (stickyNotice === SESSION_ENDED_NOTICE || stickyNotice?.startsWith(SWITCHED)) {
    stickyNotice = null;
    hideNotice();
  }
}

// The list marks `you` as "(you)", and no one else.
function markYou(you) {
  members.dataset.me = you;
  for (const mark of members.querySelectorAll(".presence-you")) {
    mark.previousSibling?.remove(); // its space
    mark.remove();
  }
  memberItem(you)?.append(" ", youMark());
}

// The whole list (on joining, and again after a reconnect): only who came or went changes in
// the page, so a screen reader is told of them, not of everyone again.
function showMembers(users) {
  if (!members || !Array.isArray(users)) return;
  const names = users.filter((user) => user?.online).map((user) => String(user.username));
  const shown = [...members.children].map((node) => node.dataset.username);
  // The first list is who was here before this page came: shown, not read out name by name
  // (as the history is not); a later one, after a reconnect, tells who came or went meanwhile.
  if (membersListed) announceMembers();
  else {
    members.setAttribute("aria-live", "off");
    // Until the page has drawn it: a join said in the same batch of frames (the page's own, a
    // moment after the list) would turn the list polite before the screen reader saw it added
    // quietly, and everyone already here would be read out.
    firstListShowing = true;
    const shown = () => setTimeout(() => firstListShowing = false, 0);
    if (typeof requestAnimationFrame === "function") requestAnimationFrame(shown);
    else shown();
  }
  membersListed = true;
  updateMembers(names, shown.filter((name) => !names.includes(name)));
}

function announceMembers() {
  if (firstListShowing) return;
  if (members && members.getAttribute("aria-live") !== "polite") {
    members.setAttribute("aria-live", "polite");
  }
}

function updateMembers(joins, leaves) {
  if (!members) return;
  for (const name of Array.isArray(leaves) ? leaves : []) memberItem(String(name))?.remove();
  for (const name of Array.isArray(joins) ? joins : []) {
    const username = String(name);
    if (memberItem(username)) continue;
    const item = element("li", "presence-user room-member");
    item.dataset.username = username;
    item.dataset.online = "true";
    const dot = element("span", "presence-dot");
    dot.setAttribute("aria-hidden", "true");
    item.append(dot, userText("span", "presence-name", username));
    if (username === members.dataset.me) item.append(" ", youMark());
    // Sorted by name, so every member sees the same order.
    const after = [...members.children].find((node) => node.dataset.username > username);
    members.insertBefore(item, after ?? null);
  }
}

function youMark() {
  return element("span", "presence-you", "(you)");
}

function memberItem(username) {
  return [...members.children].find((node) => node.dataset.username === username) ?? null;
}

function addMessage(frame) {
  if (typeof frame.message !== "string") return;
  const id = typeof frame.id === "string" ? frame.id : "";
  if (id !== "") {
    if (seen.has(id)) return;
    seen.add(id);
  }
  confirmEcho(frame);
  quietForHistory(frame.history === true);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.insertBefore(renderMessage(frame, id), placeOf(frame, id));
  while (log.childElementCount > MAX_SHOWN) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// The room's history (the last 50, on joining or after a recovery that could not be complete)
// is shown without being read out: a screen reader announces the live messages only.
function quietForHistory(history) {
  const live = history ? "off" : "polite";
  if (log.getAttribute("aria-live") !== live) log.setAttribute("aria-live", live);
}

// Messages with an offset come in the room's order: they go last. Without (an older server),
// ids sort by time, and the history can arrive after what was sent live during a reconnect.
function placeOf(frame, id) {
  if (typeof frame.offset === "number" || id === "") return null;
  let before = null;
  for (let node = log.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.id <= id) break;
    before = node;
  }
  return before;
}

// A send whose answer the lost connection took: if the room has it after all, it was stored.
function confirmEcho(frame) {
  if (frame.history) return;
  // By whom it was sent as: a log-in in another tab may have made the page someone else since.
  const same = (entry) => entry.text === frame.message && entry.as === frame.author;
  const sent = [...inFlight].find((entry) => !entry.echoed && same(entry));
  if (sent) return void (sent.echoed = true);
  const index = unconfirmed.findIndex(same);
  if (index >= 0) unconfirmed.splice(index, 1)[0].item.remove();
}

// The replay is shown up to `settleAt`: the sends the connection lost that it did not echo
// were not stored. Marked "Not sent", with a button to send them again.
function settleLost(shown) {
  if (settleAt === null || shown < settleAt) return;
  settleAt = null;
  quietForHistory(false); // what follows is news to the reader, whatever came before
  for (const entry of unconfirmed.filter((entry) => entry.lost && !entry.settled)) {
    // Kept among the unconfirmed: bytes a dying network still delivered late would store it
    // after all, and its echo then takes this mark away (see `confirmEcho`).
    entry.settled = true;
    const { item, text } = entry;
    item.dataset.state = "not-sent";
    item.querySelector(".chat-not-sent-reason").textContent =
      "Not sent: the connection was lost before the server got it.";
    const again = element("button", "chat-send-again", "Send again");
    again.type = "button";
    again.addEventListener("click", () => {
      if (!stream.isOpen) {
        return showNotice("Not connected: try again once the connection is back.");
      }
      unconfirmed.splice(unconfirmed.indexOf(entry), 1);
      item.remove();
      send(text);
      input.focus(); // the button is gone with its entry: focus is not left on nothing
    });
    // Each names its message: several may wait, each with its button.
    again.setAttribute("aria-label", `Send again: ${text.slice(0, 80)}`);
    item.append(again);
  }
}

/** Marks a send in the log as not sent, with why. */
function showUnsent({ text, as }, error) {
  quietForHistory(false); // read out, even right after the room's history
  const item = element("article", "chat-message chat-not-sent notice");
  item.dataset.state = error.maybeStored ? "unconfirmed" : "not-sent";
  // Its place in time: after the last message shown (see the ordering in addMessage).
  item.dataset.id = log.lastElementChild?.dataset.id ?? "";
  const why = error.kind === "unconfirmed"
    ? "Not confirmed: the server lost the answer from its storage. " +
      "If it was stored, it shows up with the room's next messages."
    : error.kind === "no-answer"
    ? "Not confirmed: no answer from the server in time. " +
      "If it was stored, it shows up with the room's next messages."
    : error.maybeStored
    ? "Not confirmed: the connection was lost before the server answered. " +
      "If it was stored, it shows up once the connection is back."
    : `Not sent: ${error.message}`;
  item.append(element("div", "chat-meta chat-not-sent-reason", why));
  item.append(userText("p", "chat-unsent-text", text));
  log.append(item);
  // Lost with the connection (not the server's storage that did not answer): settled by the
  // next complete recovery.
  const lost = error.kind !== "unconfirmed" && error.kind !== "no-answer";
  if (error.maybeStored) unconfirmed.push({ text, as, item, lost });
  log.scrollTop = log.scrollHeight;
}

function renderMessage(frame, id) {
  const item = document.createElement("article");
  item.className = "chat-message";
  item.dataset.id = id;
  const author = userText("span", "chat-author", String(frame.author ?? "Anonymous"));
  const meta = element("div", "chat-meta");
  meta.append(author);
  const time = new Date(String(frame.time ?? ""));
  if (!Number.isNaN(time.getTime())) {
    const stamp = element("time", "chat-time", clock(time));
    stamp.dateTime = time.toISOString();
    stamp.title = time.toLocaleString();
    meta.append(" ", stamp);
  }
  item.append(meta, userText("p", "chat-text", frame.message));
  return item;
}

// The reader's own way of writing a time: "17:06" here, "5:06 PM" there (as the presence page).
function clock(time) {
  return time.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
}

function send(text) {
  // Only a server that speaks the stream protocol (it sent an epoch) answers with acks.
  // `as`: whom the socket writes as now (see `checkWhoIAm`), the author its echo will have.
  const entry = { text, as: members?.dataset.me ?? me, echoed: false };
  inFlight.add(entry);
  stream.send({ message: text }, { ack: stream.epoch !== null })
    .catch((error) => {
      // The room has it already: the lost connection only took the ack.
      if (error.maybeStored && entry.echoed) return;
      showUnsent(entry, error);
      if (error.kind === "refused") showNotice(error.message);
    })
    .finally(() => inFlight.delete(entry));
  input.value = "";
  pending = null;
  hideNotice();
}

function sendPending() {
  if (pending !== null && input.value === pending) send(pending);
  pending = null;
}

// A sticky notice (logged out, messages not recovered) stays until the page is reloaded: a
// passing one (not connected, refused) shows over it for a while, then it is back.
let stickyNotice = null;

function showNotice(text, { sticky = false } = {}) {
  if (sticky) stickyNotice = text;
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  if (!sticky) noticeTimer = setTimeout(hideNotice, NOTICE_MS);
}

function hideNotice() {
  clearTimeout(noticeTimer);
  if (stickyNotice === null) notice.hidden = true;
  else if (notice.textContent !== stickyNotice) notice.textContent = stickyNotice;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  if (text.trim() === "") return;
  if (stream.isOpen) {
    send(text);
  } else {
    pending = text;
    showNotice(
      "Not connected: your message was not sent yet. It will be sent when the connection is back.",
    );
  }
  input.focus();
});

// The Django Channels tutorial's browser tests read the log's `value` (a textarea there).
Object.defineProperty(log, "value", {
  get: () => [...log.querySelectorAll(".chat-text")].map((p) => `${p.textContent}\n`).join(""),
});
