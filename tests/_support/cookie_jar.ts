/**
 * A cookie jar and a small browser-like HTTP client for tests: it keeps cookies, does not
 * follow redirects (so tests see them), and fills in CSRF tokens the way a page's form would.
 *
 * @example
 * ```ts
 * const client = new WebClient(server.url);
 * await client.signUp("ada", "correct horse 9");
 * await client.logIn("ada", "correct horse 9");
 * const socket = await TestSocket.open(server.wsUrl("/ws/presence/state/"), {
 *   headers: client.socketHeaders(),
 * });
 * ```
 */

/** The attributes of one `Set-Cookie` header, lower-cased names. */
export interface SetCookie {
  name: string;
  value: string;
  attributes: Map<string, string | true>;
}

/** Parses one `Set-Cookie` header value. */
export function parseSetCookie(header: string): SetCookie {
  const [pair, ...rest] = header.split(";");
  const eq = pair.indexOf("=");
  const attributes = new Map<string, string | true>();
  for (const part of rest) {
    const [key, ...value] = part.trim().split("=");
    attributes.set(key.toLowerCase(), value.length > 0 ? value.join("=") : true);
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes };
}

/** Cookies by name for one site (tests talk to one server, so domain and path are ignored). */
export class CookieJar {
  #cookies = new Map<string, string>();

  /** Takes the cookies a response sets; Max-Age=0 or an old Expires removes one. */
  take(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const cookie = parseSetCookie(header);
      const maxAge = cookie.attributes.get("max-age");
      const expires = cookie.attributes.get("expires");
      const expired = maxAge === "0" ||
        (typeof expires === "string" && Date.parse(expires) <= Date.now());
      if (expired) this.#cookies.delete(cookie.name);
      else this.#cookies.set(cookie.name, cookie.value);
    }
  }

  /** The value of one cookie. */
  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  /** Sets a cookie by hand (e.g. to plant a stale one). */
  set(name: string, value: string): void {
    this.#cookies.set(name, value);
  }

  /** The `Cookie` request header, or `null` when the jar is empty. */
  header(): string | null {
    if (this.#cookies.size === 0) return null;
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}

/** Options for one request. */
export interface RequestOptions {
  headers?: HeadersInit;
  /** Send no `Origin` header (like a non-browser client). */
  noOrigin?: boolean;
}

/** A cookie-keeping client of one test server. */
export class WebClient {
  readonly base: string;
  readonly jar = new CookieJar();

  /**
   * A client of the server at `url` signed in as `username`, after signing up unless `signUp`
   * is false (the account exists: another client of the same user).
   */
  static async signedIn(
    url: string,
    username: string,
    password: string,
    options: { signUp?: boolean } = {},
  ): Promise<WebClient> {
    const client = new WebClient(url);
    if (options.signUp !== false) await client.signUp(username, password);
    await client.logIn(username, password);
    return client;
  }

  constructor(base: string) {
    this.base = base;
  }

  /** GET without following redirects. */
  async get(path: string, options: RequestOptions = {}): Promise<Response> {
    return await this.#fetch(path, { method: "GET", headers: options.headers });
  }

  /** POSTs `fields` as a form, as given (no token is added). */
  async post(
    path: string,
    fields: Record<string, string>,
    options: RequestOptions = {},
  ): Promise<Response> {
    const headers = new Headers(options.headers);
    headers.set("content-type", "application/x-www-form-urlencoded");
    if (!options.noOrigin && !headers.has("origin")) headers.set("origin", this.base);
    return await this.#fetch(path, {
      method: "POST",
      headers,
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** Loads the form at `formPath` and POSTs `fields` to `action` with the page's CSRF token. */
  async submit(
    formPath: string,
    fields: Record<string, string>,
    options: RequestOptions & { action?: string } = {},
  ): Promise<Response> {
    const token = await this.csrfToken(formPath);
    return await this.post(
      options.action ?? formPath.split("?")[0],
      { csrfmiddlewaretoken: token, ...fields },
      options,
    );
  }

  /** The CSRF token of the first form on the page at `path`. */
  async csrfToken(path = "/log_in/"): Promise<string> {
    const page = await (await this.get(path)).text();
    const match = page.match(/name="csrfmiddlewaretoken" value="([^"]+)"/);
    if (match === null) throw new Error(`No CSRF token on ${path}`);
    return match[1];
  }

  /** Signs up; throws unless the server redirected to the log-in page. */
  async signUp(username: string, password: string): Promise<void> {
    const response = await this.submit("/sign_up/", {
      username,
      password1: password,
      password2: password,
    });
    await response.body?.cancel();
    if (response.status !== 302) throw new Error(`Sign-up of "${username}" got ${response.status}`);
  }

  /** Logs in; throws unless the server redirected (a session cookie is then in the jar). */
  async logIn(username: string, password: string): Promise<Response> {
    const response = await this.submit("/log_in/", { username, password });
    await response.body?.cancel();
    if (response.status !== 302) throw new Error(`Log-in of "${username}" got ${response.status}`);
    return response;
  }

  /** Logs out with a valid CSRF token, as the header's "Log out" button does. */
  async logOut(): Promise<Response> {
    const response = await this.submit("/log_in/", {}, { action: "/log_out/" });
    await response.body?.cancel();
    return response;
  }

  /** Headers for a WebSocket upgrade from this client's pages: its cookies and Origin. */
  socketHeaders(): Record<string, string> {
    const cookie = this.jar.header();
    return { origin: this.base, ...(cookie ? { cookie } : {}) };
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.jar.header();
    if (cookie !== null && !headers.has("cookie")) headers.set("cookie", cookie);
    const response = await fetch(this.base + path, { ...init, headers, redirect: "manual" });
    this.jar.take(response);
    return response;
  }
}
