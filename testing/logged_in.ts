/**
 * A signed-in user for a test, as Django's `Client.force_login` gives one: the user is made if
 * need be, a session is started, and the headers carry its cookie to a `Communicator` or a
 * request.
 */
import type { Services } from "../server/context.ts";
import { SESSION_COOKIE } from "../auth/cookies.ts";
import { normalizeUsername, usernameErrors } from "../auth/account_rules.ts";

/**
 * Headers that sign in `username` (made with a random password when it does not exist) by a
 * fresh session's cookie, with the `Origin` of the app's own site, as a browser's would be.
 *
 * @example
 * ```ts
 * const comm = new Communicator(app, "/ws/private/", {
 *   headers: await loggedInHeaders(services, "ada"),
 * });
 * await comm.connect(); // scope.user is ada
 * ```
 */
export async function loggedInHeaders(
  services: Services,
  username: string,
  origin = "http://localhost",
): Promise<Record<string, string>> {
  // A name no account can have would give a cookie that signs nobody in: the test would see an
  // anonymous user, or a 403, and look for the fault elsewhere.
  const errors = usernameErrors(normalizeUsername(username));
  if (errors.length > 0) {
    throw new TypeError(`"${username.slice(0, 40)}" cannot be a username: ${errors.join(" ")}`);
  }
  if (await services.users.find(username) === null) {
    const password = crypto.randomUUID();
    if (await services.users.create(username, password) === null) {
      throw new Error(`Could not create the user "${username}" for the test`);
    }
  }
  const { id } = await services.sessions.create(username);
  return { cookie: `${SESSION_COOKIE}=${id}`, origin };
}
