/**
 * What an app (`app.ts`) answers before any route runs, each with its log line and why: a Host
 * that is no host, or names a host the site does not answer to (400, as Django answers a
 * `DisallowedHost`); a request that arrives while the app stops (503).
 */
import type { Config } from "./_config_schema.ts";
import { asksForWebSocket } from "./handshake.ts";
import { hasValidHost, targetAsSent } from "./_request_host.ts";
import { finish } from "./_finish.ts";
import { log } from "../telemetry/log.ts";
import { redactedTarget } from "../auth/tokens.ts";
import { isHostServed, requestHost } from "../auth/origin.ts";

/** The page of an error, for a status, its title and a detail (HTML of the app's own). */
export type ErrorPage = (status: number, title: string, detail: string) => Response;

/** Who asked, and since when: for the access line of a refusal. */
export interface Asker {
  /** The client's address as the log shows it. */
  client: string;
  /** `performance.now()` when the request came. */
  started: number;
}

/**
 * The URL `request` asks for, or its refusal when its Host is no host (`a b`, `a/static`: its
 * URL is not the one it asked for, see `_request_host.ts`) or one `config.servedHosts` does not
 * take.
 */
export function urlOrHostRefusal(
  request: Request,
  config: Pick<Config, "servedHosts" | "trustProxy">,
  errorPage: ErrorPage,
  asker: Asker,
): URL | Response | Promise<Response> {
  const url = hasValidHost(request) ? URL.parse(request.url) : null;
  if (url === null) return refuseHost(request, errorPage, asker, BAD_HOST_PAGE, BAD_HOST);
  if (isHostServed(request, config.servedHosts, config.trustProxy)) return url;
  // A forwarded host is whatever the proxy passed on: cut, as a path is in its line.
  const host = requestHost(request, config.trustProxy).slice(0, MAX_SHOWN_HOST);
  const why = `the Host ${JSON.stringify(host)} is not one this site answers to (ALLOWED_HOSTS)`;
  return refuseHost(request, errorPage, asker, NOT_SERVED_PAGE, why);
}

const BAD_HOST = "the Host header is not a valid host";
const BAD_HOST_PAGE = "The Host header is not a valid host.";
const NOT_SERVED_PAGE = "This server does not answer to the host the request names.";
const MAX_SHOWN_HOST = 255; // the longest DNS name

function refuseHost(
  request: Request,
  errorPage: ErrorPage,
  asker: Asker,
  page: string,
  why: string,
): Response | Promise<Response> {
  const response = finish(request, errorPage(400, "Bad Request", page));
  // The path as the client sent it, read without the host; a token in it is still redacted.
  const target = URL.parse(targetAsSent(request), "http://h");
  const seconds = (performance.now() - asker.started) / 1000;
  const path = target === null ? "-" : redactedTarget(target);
  log.http(request.method, path, 400, seconds, asker.client, why);
  return response;
}

/** Why a stopping app refuses a request: its log line's reason, and its answer's text. */
export interface Stopping {
  reason: string;
  text: string;
}

/** A drain (SIGTERM): the process restarts. */
export const DRAINING: Stopping = {
  reason: "the server is draining: it restarts",
  text: "Service restarting; try again in a moment.\n",
};

/** A close (Ctrl-C): the app's backends close under any request that comes now. */
export const SHUTTING_DOWN: Stopping = {
  reason: "the server is shutting down",
  text: "Service shutting down; try again in a moment.\n",
};

/**
 * A request that came while the app stops: 503, logged, so that a load balancer still sending
 * traffic to a stopping process shows.
 */
export function refuseWhileStopping(
  request: Request,
  url: URL,
  client: string,
  stopping: Stopping,
): Response | Promise<Response> {
  if (asksForWebSocket(request)) {
    log.websocket("REJECT", url.pathname, client, stopping.reason);
  } else {
    log.http(request.method, redactedTarget(url), 503, 0, client, stopping.reason);
  }
  return finish(
    request,
    new Response(stopping.text, {
      status: 503,
      headers: {
        "retry-after": "1",
        connection: "close",
        "content-type": "text/plain; charset=utf-8",
      },
    }),
  );
}
