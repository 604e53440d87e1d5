// Elements made of text, for the site's page scripts (chat.js, presence.js, admin.js). Only
// `textContent`: what a user wrote never becomes markup.

/** A `tag` element of `className` (none when empty) holding `text`, if given. */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * What a user wrote (a name, a message), in its own direction (`dir=auto`): Hebrew or Arabic reads
 * right to left, its punctuation at the right end, without turning the sentence around it.
 */
export function userText(tag, className, text) {
  const node = element(tag, className, text);
  node.dir = "auto";
  return node;
}

/**
 * A name set in a sentence of plain text (a notice), isolated as `<bdi>` isolates it in the page:
 * a right-to-left name reads the same in the sentence as in the lists, and does not turn the
 * words around it (U+2068 FIRST STRONG ISOLATE ... U+2069 POP DIRECTIONAL ISOLATE).
 */
export function isolated(name) {
  return `\u2068${name}\u2069`;
}

/**
 * Shows a connection's state in its `role=status` label. A screen reader hears each change of
 * state once: while the state stays "reconnecting", its retries and countdowns only show
 * (an outage of a minute would otherwise be read out twenty times).
 */
export function showConnectionState(label, state, text) {
  const again = state === "reconnecting" && label.dataset.state === state;
  label.setAttribute("aria-live", again ? "off" : "polite");
  label.dataset.state = state;
  label.textContent = text;
}
