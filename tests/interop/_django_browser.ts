/**
 * A browser on a Django site's log-in pages (`tests/fixtures/django_chat/`, with
 * `mysite/settings_auth.py`): it keeps the cookies Django sets, and posts the log-in, log-out
 * and password change forms with their CSRF token, as Django's own views expect.
 */
import { assertEquals } from "@std/assert";
import { getSetCookies } from "@std/http/cookie";

/** A browser signed in, or not, on the Django site at `origin`. */
export class DjangoBrowser {
  #origin: string;
  #cookies = new Map<string, string>();

  /** A browser with no cookies yet for the site at `origin` (`http://127.0.0.1:<port>`). */
  constructor(origin: string) {
    this.#origin = origin;
  }

  /** The `Cookie` header the browser sends to the site, and to a socket on the same host. */
  get cookie(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  /** The value of Django's session cookie, once logged in. */
  get sessionKey(): string | undefined {
    return this.#cookies.get("sessionid");
  }

  /** Logs in through Django's `LoginView`; a wrong password fails the test. */
  async logIn(username: string, password: string): Promise<void> {
    const answer = await this.#post("/accounts/login/", { username, password });
    assertEquals(answer.status, 302, "Django's log-in redirects once it logged the user in");
  }

  /** Logs out through Django's `LogoutView`, which sends `user_logged_out`. */
  async logOut(): Promise<void> {
    const answer = await this.#post("/accounts/logout/", {});
    assertEquals(answer.status, 302, "Django's log-out redirects once it logged the user out");
  }

  /**
   * Changes the password through Django's `PasswordChangeView`, which ends the user's other
   * sessions and gives this one a new key (`update_session_auth_hash`).
   */
  async changePassword(oldPassword: string, newPassword: string): Promise<void> {
    const answer = await this.#post("/accounts/password_change/", {
      old_password: oldPassword,
      new_password1: newPassword,
      new_password2: newPassword,
    });
    assertEquals(answer.status, 302, "Django's password change redirects once it is made");
  }

  // Gets the log-in form for its CSRF token (and cookie), then posts `fields` with it.
  async #post(path: string, fields: Record<string, string>): Promise<Response> {
    const form = await this.#fetch("/accounts/login/", {});
    const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
    const body = new URLSearchParams({ ...fields, csrfmiddlewaretoken: token });
    const answer = await this.#fetch(path, { method: "POST", body });
    await answer.body?.cancel();
    return answer;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    const answer = await fetch(this.#origin + path, {
      ...init,
      headers: { cookie: this.cookie },
      redirect: "manual",
    });
    for (const cookie of getSetCookies(answer.headers)) {
      if (cookie.value === "") this.#cookies.delete(cookie.name);
      else this.#cookies.set(cookie.name, cookie.value);
    }
    return answer;
  }
}
