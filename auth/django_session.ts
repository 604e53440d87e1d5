/**
 * Who a Django project's session names, for a shop that moves its consumers here one at a time
 * and keeps its pages and log-in in Django: Channels' `AuthMiddlewareStack` read Django's
 * session, and a moved consumer must not lose its user. The server does not read Django's
 * session store (any backend, Django's signing): it asks a small Django view, server to server,
 * forwarding the one cookie, and the view answers JSON:
 * `{"authenticated": true, "username": "ada", "id": 42, "expires_at": 1767225600}` (`id` may be
 * left out).
 *
 * A socket so identified joins the group of its Django session key (`sessionGroup`, as ours
 * do), so Django's `user_logged_out` can close it over channels_redis; where that close may
 * have been missed, "is it still live" is the same question asked again. It also joins its
 * user's group (`djangoUserGroup`): a password change ends the user's sessions without a
 * signal, so Django's app sends `session.recheck` there and each session is asked again.
 * Django unreachable, slow, failing or answering nonsense is an outage (503, retry), never an
 * anonymous user. So is a view asked too much: at most `DJANGO_MAX_IN_FLIGHT` questions at
 * once, of which one client address asks at most `DJANGO_MAX_IN_FLIGHT_PER_ADDRESS` (one client
 * flooding the view with made-up cookies must not take every place from Django's users), the
 * sockets of one session share theirs, and a handshake's is dropped when its client leaves.
 * What a refusal warns of is written once a minute at most (a flood would write a line each).
 */
import { ANONYMOUS, type ExternalSession, type Identity } from "./identify.ts";
import { readCookies } from "./cookies.ts";
import { sessionGroup } from "./sessions.ts";
import { QuietWarning } from "../telemetry/quiet_warning.ts";

/** How to reach Django's who-am-I view. */
export interface DjangoSessionOptions {
  /** The view's URL, e.g. `http://127.0.0.1:8001/channels/whoami/`. */
  url: string;
  /** Django's `SESSION_COOKIE_NAME`; `sessionid` by default. */
  cookie?: string;
  /** How long the view may take to answer, in ms; 2000 by default. */
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer <secret>`, for a view that checks who asks; none when empty. */
  secret?: string;
  /** The most questions to the view at once; {@linkcode DJANGO_MAX_IN_FLIGHT} by default. */
  maxInFlight?: number;
  /**
   * The most of those one client address asks at once;
   * {@linkcode DJANGO_MAX_IN_FLIGHT_PER_ADDRESS} by default.
   */
  maxInFlightPerAddress?: number;
  /** The clock, in ms, of how often a refusal is warned of; `performance.now` by default. */
  clock?: () => number;
}

/**
 * The most questions one process asks Django's view at once by default: past it a handshake is
 * refused with 503 at once, rather than queued for a view that is slow already (or flooded).
 */
export const DJANGO_MAX_IN_FLIGHT = 32;

/**
 * The most of those questions one client address (the per-address connection cap's, so behind
 * `TRUST_PROXY` the forwarded one) has in flight at once: a handshake past it is refused with 503
 * at once, so that one client flooding handshakes with made-up cookies leaves the other places
 * to everyone else. A browser opens a few sockets at once, not more.
 */
export const DJANGO_MAX_IN_FLIGHT_PER_ADDRESS = 4;

/** The most of an answer read: a who-am-I answer is a few dozen bytes. */
export const DJANGO_ANSWER_MAX_BYTES = 4096;

/**
 * The longest wait, in ms, before a recheck asks the view: spread so that a layer gap's rechecks
 * of every Django socket do not reach it at once.
 */
const RECHECK_SPREAD_MS = 500;

/** The binding's name in log lines ("Could not read the Django session again"). */
const KIND = "Django session";
const UNAVAILABLE = "Server busy: the Django session could not be checked; retry later";
const ADDRESS_BUSY =
  "Server busy: this address has too many Django session checks under way; retry later";
const GONE = "the client left while its Django session was checked";
// What a session cookie of any Django backend can hold (a key, or signed_cookies' signed data);
// anything else cannot be Django's and is not forwarded.
const COOKIE_VALUE = /^[A-Za-z0-9._:\-]{1,4096}$/;

// What an answer other than 200 most likely means, said beside it: the first hour of a
// migration meets each of these.
const ANSWER_HINTS: Readonly<Record<number, string>> = {
  302:
    " (a redirect: is the view exempt from log-in, as Django 5.1's @login_not_required makes it?)",
  400: " (is the host of DJANGO_SESSION_URL in Django's ALLOWED_HOSTS?)",
  403: " (does Django's CHANNELS_WHOAMI_SECRET match DJANGO_SESSION_SECRET?)",
  404: " (is the view routed at that path in Django's urls.py?)",
};

/** What the view said of one session. */
type Answer = { authenticated: false } | {
  authenticated: true;
  username: string;
  expiresAt: number;
  id?: number | string;
};

/**
 * Django's view could not say (unreachable, timed out, failed, malformed), or was not asked (too
 * many questions in flight); the message says which, and `kind` names it without the details:
 * each kind is warned of on its own (see `#refusals`).
 */
class DjangoUnavailable extends Error {
  constructor(readonly kind: string, message: string) {
    super(message);
  }
}

/** Not asked: the client's address has its share of the questions in flight already. */
class AddressShareTaken extends DjangoUnavailable {}

/** Identity from Django's session cookie (see the module comment). */
export class DjangoSessionIdentity {
  #url: string;
  /** The URL as log lines give it: without a password or query it may hold. */
  #where: string;
  #cookie: string;
  #timeoutMs: number;
  #secret: string;
  #maxInFlight: number;
  #maxInFlightPerAddress: number;
  #inFlight = 0;
  /** Questions in flight by client address; an address is here only while it has some. */
  #inFlightByAddress = new Map<string, number>();
  /** A refused handshake's warning: once a minute at most for each kind of failure. */
  #refusals: QuietWarning;
  #shared = new Map<string, Promise<Answer>>();

  /** Asks the view at `options.url`. */
  constructor(options: DjangoSessionOptions) {
    const url = new URL(options.url); // a bad URL fails at start, not at a handshake
    this.#url = url.href;
    this.#where = url.origin + url.pathname;
    this.#cookie = options.cookie ?? "sessionid";
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#secret = options.secret ?? "";
    this.#maxInFlight = options.maxInFlight ?? DJANGO_MAX_IN_FLIGHT;
    this.#maxInFlightPerAddress = options.maxInFlightPerAddress ??
      DJANGO_MAX_IN_FLIGHT_PER_ADDRESS;
    this.#refusals = new QuietWarning(undefined, options.clock);
  }

  /** How many client addresses have questions in flight (none once all are answered). */
  get addressesAsking(): number {
    return this.#inFlightByAddress.size;
  }

  /**
   * Who `request`'s Django session cookie names: `null` when it carries none (or none Django
   * could have made) or Django says it names nobody; an identity with `unavailable` when Django
   * could not say. `address` is the client's (as the per-address connection cap counts it):
   * it asks at most its share of the questions in flight.
   */
  async identify(request: Request, address?: string): Promise<Identity | null> {
    const key = readCookies(request.headers)[this.#cookie];
    if (!key || !COOKIE_VALUE.test(key)) return null;
    let answer: Answer;
    try {
      answer = await this.#ask(key, request.signal, address);
    } catch (error) {
      if (!(error instanceof DjangoUnavailable)) throw error;
      // A client that left is no outage: the handshake says so (499), without a warning.
      if (request.signal.aborted) return { user: ANONYMOUS, sessionId: null, unavailable: GONE };
      // Each refused handshake has its access line with its reason; the warning is the outage's
      // (or the flood's), at most once a minute.
      this.#refusals.warn(
        error.kind,
        `Django session check failed (${error.message}); refusing the handshake with 503`,
        (more) =>
          `${more} more Django session checks failed since the last warning (the latest: ` +
          `${error.message}); their handshakes were refused with 503`,
      );
      const reason = error instanceof AddressShareTaken ? ADDRESS_BUSY : UNAVAILABLE;
      return { user: ANONYMOUS, sessionId: null, unavailable: reason };
    }
    if (!answer.authenticated) return null;
    return {
      user: Object.freeze({
        username: answer.username,
        isAuthenticated: true,
        source: "django" as const,
        ...(answer.id !== undefined && { id: answer.id }),
      }),
      sessionId: null,
      expiresAt: answer.expiresAt,
      external: await this.#binding(key, answer.username),
    };
  }

  // A log-out in Django sends `connection.close` to this group; still live while Django still
  // names the same user. Rejects when Django cannot say: the caller closes or retries.
  async #binding(key: string, username: string): Promise<ExternalSession> {
    return {
      kind: KIND,
      group: await sessionGroup(key),
      userGroup: await djangoUserGroup(username),
      isLive: async (options = {}) => {
        const answer = await (options.shared === true ? this.#askShared(key) : this.#ask(key));
        return answer.authenticated && answer.username === username;
      },
    };
  }

  // One question for every socket of session `key` that rechecks while it is under way, after
  // a random wait of up to RECHECK_SPREAD_MS: a layer gap rechecks every socket at once, and a
  // user's tabs share one session. Not a cache: dropped once answered, so the next recheck asks
  // again. For rechecks only: a question shared was asked after the gap that started them, and a
  // log-out after it reaches the sockets through their group. A handshake asks its own, after
  // its join (a question from before it could miss a log-out whose close it did not hear).
  #askShared(key: string): Promise<Answer> {
    let answer = this.#shared.get(key);
    if (answer === undefined) {
      const wait = Math.floor(Math.random() * RECHECK_SPREAD_MS);
      answer = delay(wait).then(() => this.#ask(key)).finally(() => this.#shared.delete(key));
      this.#shared.set(key, answer);
    }
    return answer;
  }

  // One question to the view, unless `#maxInFlight` are asked already, or `address` has its
  // share of them; dropped when `client` (the handshake's signal) aborts: a client that left
  // does not keep Django busy. A recheck (no address) counts toward the cap only.
  async #ask(key: string, client?: AbortSignal, address?: string): Promise<Answer> {
    const ofAddress = address === undefined ? 0 : this.#inFlightByAddress.get(address) ?? 0;
    if (ofAddress >= this.#maxInFlightPerAddress) {
      throw new AddressShareTaken(
        "address share",
        `${address} has its share, ${this.#maxInFlightPerAddress}, of the questions to ` +
          `${this.#where} in flight`,
      );
    }
    if (this.#inFlight >= this.#maxInFlight) {
      throw new DjangoUnavailable(
        "cap",
        `${this.#maxInFlight} questions to ${this.#where} in flight`,
      );
    }
    this.#inFlight++;
    if (address !== undefined) this.#inFlightByAddress.set(address, ofAddress + 1);
    try {
      return await this.#fetch(key, client);
    } finally {
      this.#inFlight--;
      if (address !== undefined) this.#release(address);
    }
  }

  // One question of `address` answered (or failed, or dropped): the address is forgotten with
  // its last, so the map holds only addresses with questions in flight.
  #release(address: string): void {
    const left = this.#inFlightByAddress.get(address)! - 1;
    if (left === 0) this.#inFlightByAddress.delete(address);
    else this.#inFlightByAddress.set(address, left);
  }

  // The question, with only the one cookie: never the client's other cookies, and the value
  // never in a log line.
  async #fetch(key: string, client?: AbortSignal): Promise<Answer> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const headers = new Headers({ cookie: `${this.#cookie}=${key}`, accept: "application/json" });
    if (this.#secret !== "") headers.set("authorization", `Bearer ${this.#secret}`);
    let response: Response;
    try {
      response = await fetch(this.#url, {
        headers,
        redirect: "manual", // a redirect to a log-in page is not an answer
        signal: client === undefined ? timeout : AbortSignal.any([timeout, client]),
      });
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      throw new DjangoUnavailable(
        timedOut ? "timeout" : "unreachable",
        timedOut
          ? `${this.#where} did not answer within ${this.#timeoutMs} ms`
          : `${this.#where} could not be reached: ${(error as Error).message}`,
      );
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      const status = `answered ${response.status}`;
      const redirect = response.status >= 300 && response.status < 400;
      const hint = ANSWER_HINTS[response.status] ?? (redirect ? ANSWER_HINTS[302] : "");
      throw new DjangoUnavailable(status, `${this.#where} ${status}${hint}`);
    }
    return parseAnswer(await limitedText(response, this.#where), this.#where);
  }
}

/**
 * The group of the Django user named `username`, as the README's Django receiver names it:
 * `django_user.` and the first 32 hex digits of the SHA-256 of the name's UTF-8: Channels'
 * group names hold only ASCII letters, digits, `-`, `_` and `.`, Django's usernames more.
 */
export async function djangoUserGroup(username: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(username));
  const hex = Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0"));
  return `${DJANGO_USER_GROUP_PREFIX}${hex.join("").slice(0, 32)}`;
}

/** How the group of a Django user's sockets begins (see {@linkcode djangoUserGroup}). */
export const DJANGO_USER_GROUP_PREFIX = "django_user.";

function delay(ms: number): Promise<void> {
  return ms === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

// The body, refused past DJANGO_ANSWER_MAX_BYTES without reading the rest.
async function limitedText(response: Response, url: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > DJANGO_ANSWER_MAX_BYTES) {
        throw new DjangoUnavailable(
          "too large",
          `${url} answered more than ${DJANGO_ANSWER_MAX_BYTES} bytes`,
        );
      }
      text += decoder.decode(chunk, { stream: true });
    }
  } catch (error) {
    if (error instanceof DjangoUnavailable) throw error;
    throw new DjangoUnavailable(
      "broken off",
      `${url} broke off its answer: ${(error as Error).message}`,
    );
  }
  return text + decoder.decode();
}

// `{"authenticated": false}`, or `true` with a username and `expires_at` in epoch seconds, and
// perhaps the user's `id`: a whole number, or a string (a UUID primary key) of up to 100
// characters.
function parseAnswer(text: string, url: string): Answer {
  let body: Record<string, unknown> | null = null;
  try {
    body = JSON.parse(text);
  } catch {
    // told below, with the rest of what is malformed
  }
  if (body === null || typeof body !== "object" || typeof body.authenticated !== "boolean") {
    throw new DjangoUnavailable(
      "malformed",
      `${url} answered malformed JSON (no "authenticated" boolean)`,
    );
  }
  if (!body.authenticated) return { authenticated: false };
  const { username, expires_at: expiresAt } = body;
  if (typeof username !== "string" || username === "") {
    throw new DjangoUnavailable(
      "malformed",
      `${url} answered an authenticated user without a username`,
    );
  }
  if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) {
    throw new DjangoUnavailable(
      "malformed",
      `${url} answered an authenticated user without "expires_at"`,
    );
  }
  // Refused rather than dropped: a consumer that names groups by it would put every such user
  // in one group. A 64-bit key past 2^53 cannot come as a JSON number exactly, so two users
  // could share one: it must come as a string.
  const id = body.id;
  if (
    id !== undefined && !Number.isSafeInteger(id) &&
    !(typeof id === "string" && id !== "" && id.length <= 100)
  ) {
    const tooBig = typeof id === "number" && Number.isInteger(id);
    throw new DjangoUnavailable(
      "malformed",
      tooBig
        ? `${url} answered an "id" past 2^53, which a JSON number cannot hold exactly: send ` +
          "it as a string (str(request.user.pk))"
        : `${url} answered an "id" that is no whole number nor a string of 1 to 100 characters`,
    );
  }
  return {
    authenticated: true,
    username,
    expiresAt: expiresAt * 1000,
    ...(id !== undefined && { id: id as number | string }),
  };
}
