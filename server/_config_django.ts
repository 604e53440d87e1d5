/** The Django session bridge's settings (`auth/django_session.ts`), read from the environment. */
import type { Config, Env } from "./_config_schema.ts";
import { integer, tokenSetting } from "./_config_values.ts";

/**
 * The settings of Django's who-am-I view (`DJANGO_SESSION_…`), `null` without its URL. Every name
 * is read even then, so a misspelt or bad one is told.
 */
export function djangoSessionSettings(env: Env): Config["djangoSession"] {
  const cookie = env.DJANGO_SESSION_COOKIE || "sessionid";
  const timeoutMs = integer(
    "DJANGO_SESSION_TIMEOUT_MS",
    env.DJANGO_SESSION_TIMEOUT_MS,
    2000,
    1,
    60_000,
  );
  const secret = tokenSetting("DJANGO_SESSION_SECRET", env.DJANGO_SESSION_SECRET, "");
  const url = env.DJANGO_SESSION_URL;
  if (!url) return null;
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) {
    // Quoted without a password it may hold: a start's error is read by more people than secrets.
    const shown = url.replace(/\/\/[^/@]*@/, "//***@");
    throw new Error(`DJANGO_SESSION_URL must be an http or https URL, got "${shown}"`);
  }
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookie)) {
    throw new Error(`DJANGO_SESSION_COOKIE must be a cookie name, got "${cookie}"`);
  }
  return { url, cookie, timeoutMs, secret };
}
