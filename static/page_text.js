// Elements made of text, for the site's page scripts (chat.js, presence.js). Only
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
