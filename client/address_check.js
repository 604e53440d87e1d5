/**
 * Why a WebSocket address fails, asked over HTTP: a browser's `WebSocket` tells a route that
 * does not exist, one that redirects, or a handshake the server refuses (an expired token, a
 * login required, a room the consumer will not open) from a server that is down by nothing: it
 * sees 1006 for each. A plain `GET` of the same address does: the reconnecting socket
 * (`live_socket.js`) asks once its attempts keep failing before they open, and stops on an
 * answer no retry would change: a 404, a redirect, or this server's 403 with its
 * `Channels-Refused` header and reason. An answer that tells nothing (the route's own 426: a
 * socket refused for now, by a connection cap, or by a process that did not see the refusal)
 * is asked for again only after twice as many failed attempts, so a tab's retries do not send
 * a second request each; a question nobody answered (the server down) is asked again at once.
 */

// After this many attempts in a row that never opened, the address itself is asked about.
const CHECK_AFTER_UNOPENED = 2;
// The longest refusal reason kept (the server's are one line of at most 200 characters).
const MAX_REASON_LENGTH = 300;
// How long that question may take: no answer tells nothing, and the attempts go on.
const CHECK_TIMEOUT_MS = 10_000;

/**
 * @typedef {object} AddressRefusal
 * @property {string} text What to show: which answer, for which path; for a refused
 *   handshake, the server's reason ("Token expired: log in again").
 * @property {string} origin The server that gave it (`https://example.com`).
 * @property {string} [refused] For a refused handshake, why in one word, as the server's
 *   `Channels-Refused` header gives it: `token`, `login_required`, `name_conflict`, `origin`
 *   or `consumer`. Absent for a 404 or a redirect.
 */

/**
 * A reconnecting socket's attempts that failed before they opened, and the question about its
 * address they lead to: asked once two in a row failed, one at a time, for at most 10 s; once
 * answered with nothing to tell, again after twice as many failures (4, 8, 16…) until an
 * attempt opens.
 */
export class UnopenedAttempts {
  #probe;
  /** Attempts in a row that failed before they opened. */
  #unopened = 0;
  /** The address question in flight, to abort on `abort()`. */
  #checking = /** @type {AbortController | null} */ (null);
  /** The failures in a row at which the address is asked about next. */
  #askAt = CHECK_AFTER_UNOPENED;
  /** Attempts that opened: an answer to a question asked before the last of them is stale. */
  #opens = 0;

  /** @param {typeof fetch | false | undefined} probe What asks (default: the global `fetch`). */
  constructor(probe) {
    this.#probe = probe;
  }

  /** An attempt opened: the address is right, and the count starts again. */
  opened() {
    this.#unopened = 0;
    this.#askAt = CHECK_AFTER_UNOPENED;
    this.#opens += 1;
  }

  /** An attempt failed before it opened. */
  failed() {
    this.#unopened += 1;
  }

  /** Whether enough attempts in a row failed for the address to be asked about. */
  get due() {
    return this.#unopened >= this.#askAt;
  }

  /**
   * Asks about `url` (see {@linkcode askAboutAddress}), unless a question is in flight or there
   * is nothing to ask with. Resolves with the refusal, or null: none, no question, or an attempt
   * that opened meanwhile (which says the address is right after all).
   * @param {string} url
   * @returns {Promise<AddressRefusal | null>}
   */
  async ask(url) {
    const probe = this.#probe ?? globalThis.fetch;
    if (this.#checking !== null || typeof probe !== "function") return null;
    const checking = new AbortController();
    this.#checking = checking;
    const timer = setTimeout(() => checking.abort(), CHECK_TIMEOUT_MS);
    const opensBefore = this.#opens;
    let answer;
    try {
      answer = await askAboutAddress(probe, url, checking.signal);
    } finally {
      clearTimeout(timer);
      if (this.#checking === checking) this.#checking = null;
    }
    const due = this.due; // false when an attempt opened meanwhile
    if (answer.answered && this.#opens === opensBefore) this.#askAt = 2 * this.#unopened;
    return due ? answer.refusal : null;
  }

  /**
   * Asks again after {@linkcode CHECK_AFTER_UNOPENED} more failures: a refusal was answered for
   * an address the next attempts no longer use (a URL function's fresh token).
   */
  askSoon() {
    this.#askAt = this.#unopened + CHECK_AFTER_UNOPENED;
  }

  /** Ends the question in flight, if any (the socket stopped). */
  abort() {
    this.#checking?.abort();
  }
}

/**
 * Asks for `url` (ws, wss, http or https; relative to the page) over HTTP with `probe`.
 * Resolves whether the server answered, and the refusal when the answer is a 404, a redirect,
 * or a 403 with a `Channels-Refused` header (its body is the reason); null for any other answer
 * (a WebSocket route's own 426, another server's 403), for none (no server, a cross-origin
 * fetch refused, the signal aborted) and for an address that has no HTTP twin.
 * @param {typeof fetch} probe @param {string} url @param {AbortSignal} signal
 * @returns {Promise<{ answered: boolean, refusal: AddressRefusal | null }>}
 */
export async function askAboutAddress(probe, url, signal) {
  const address = httpAddress(url);
  if (address === null) return { answered: false, refusal: null };
  try {
    const response = await probe(address.href, { cache: "no-store", redirect: "manual", signal });
    const refused = response.status === 403 ? response.headers.get(REFUSED_HEADER) : null;
    if (refused !== null) {
      const reason = (await response.text()).trim().slice(0, MAX_REASON_LENGTH);
      const text = reason || `${address.pathname} refuses this connection (403 Forbidden)`;
      return { answered: true, refusal: { text, origin: address.origin, refused } };
    }
    await response.body?.cancel();
    const text = refusalText(response, address.pathname);
    return { answered: true, refusal: text === null ? null : { text, origin: address.origin } };
  } catch {
    return { answered: false, refusal: null };
  }
}

// The header of the server's 403 to a plain GET of a WebSocket route whose handshake it refuses.
const REFUSED_HEADER = "channels-refused";

// The http(s) address a ws(s) address is asked about; null for one that has no such twin.
function httpAddress(url) {
  let address;
  try {
    address = new URL(url, globalThis.location?.href);
  } catch {
    return null;
  }
  if (address.protocol === "ws:") address.protocol = "http:";
  else if (address.protocol === "wss:") address.protocol = "https:";
  return address.protocol === "http:" || address.protocol === "https:" ? address : null;
}

// What an answer says no retry will change, or null. A browser hides a redirect's status and
// its Location from `redirect: "manual"` (an "opaqueredirect" with status 0).
function refusalText(response, path) {
  if (response.status === 404) return `No WebSocket route at ${path} (404 Not Found)`;
  const redirect = response.type === "opaqueredirect" ||
    (response.status >= 300 && response.status < 400);
  if (!redirect) return null;
  // Where to, by its path alone (Deno sees it, a browser does not): its query may hold a token.
  const location = response.headers.get("location");
  const to = location === null ? null : pathOf(location, response.url || "http://x/");
  return `${path} redirects${to ? ` to ${to}` : ""}, which a WebSocket does not follow` +
    (path.endsWith("/") ? "" : " (a trailing slash missing?)");
}

// `location`'s path (relative to `base`), or null when it is no URL (not `URL.parse`: older
// browsers have no such function).
function pathOf(location, base) {
  try {
    return new URL(location, base).pathname;
  } catch {
    return null;
  }
}
