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
