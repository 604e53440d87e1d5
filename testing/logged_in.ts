/**
 * A signed-in user for a test, as Django's `Client.force_login` gives one: the user is made if
 * need be, a session is started, and the headers carry its cookie to a `Communicator` or a
 * request.
 */
import type { Services } from "../server/context.ts";
import { SESSION_COOKIE } from "../auth/cookies.ts";
import { normalizeUsername, usernameErrors } from "../auth/account_rules.ts";

/**
 * Headers that sign in `username` (made with a random password when it does not exist, if the
 * sign-up rules let it be a username: a `TypeError` names the rule it breaks) by a fresh session's
 * cookie, with the `Origin` of the app's own site, as a browser's would be: the first host of
 * `ALLOWED_HOSTS` (`.example.com` names `example.com`), or `http://localhost`, the communicator's
 * host, when it lists none. Give `origin` to sign in from another page.
 *
 * @example
 * ```ts
 * import type { App, Services } from "@channels/deno";
 * import { Communicator, loggedInHeaders } from "@channels/deno/testing";
 *
 * declare const services: Services;
 * declare const app: App; // an app over `services`, whose /ws/private/ needs a login
 * const comm = new Communicator(app, "/ws/private/", {
 *   headers: await loggedInHeaders(services, "ada"),
 * });
 * await comm.connect(); // scope.user is ada
 * ```
 */
export async function loggedInHeaders(
  services: Services,
  username: string,
  origin: string = siteOrigin(services.config.allowedHosts),
): Promise<Record<string, string>> {
  if (await services.users.find(username) === null) {
    // Made here, the account follows the sign-up form's rules: a test must not pass with a name
    // the app's users cannot pick. One an app's own script made already still signs in.
    const errors = usernameErrors(normalizeUsername(username));
    if (errors.length > 0) {
      throw new TypeError(
        `"${username.slice(0, 40)}" cannot be a username (sign-up's rule): ${errors.join(" ")}`,
      );
    }
    const password = crypto.randomUUID();
    if (await services.users.create(username, password) === null) {
      throw new Error(`Could not create the user "${username}" for the test`);
    }
  }
  const { id } = await services.sessions.create(username);
  const headers = { cookie: `${SESSION_COOKIE}=${id}`, origin };
  // A cookie that signs nobody in (a name no session can carry) would show the test an
  // anonymous user, or a 403, and send it looking for the fault elsewhere: asked as the app does.
  const { user } = await services.identify(new Request("http://localhost/", { headers }));
  if (user.username !== username) {
    throw new TypeError(
      `"${username.slice(0, 40)}" cannot sign in: its session reads as ${
        user.username === null ? "anonymous" : JSON.stringify(user.username)
      }`,
    );
  }
  return headers;
}

// The Origin of a page of the app's own site. With no `ALLOWED_HOSTS` the Origin must name the
// host the request came to: the communicator's, localhost. `*` allows any, localhost too.
function siteOrigin(allowedHosts: readonly string[]): string {
  const named = allowedHosts.find((host) => host !== "*");
  if (named === undefined) return "http://localhost";
  return `http://${named.startsWith(".") ? named.slice(1) : named}`;
}
