/**
 * Which errors say "a backend is away now" (a 503 to be tried again) rather than a bug (a 500):
 * those the Redis paths of a failover and of a paused Redis end with among them.
 */
import { assert } from "@std/assert";
import { DisconnectsClientError } from "redis";
import { isBackendUnavailable } from "../../storage/unavailable.ts";
import { NotSentError } from "../../layers/streams/_sentinel_sender.ts";
import { NoAnswerInTimeError } from "../../storage/with_timeout.ts";

Deno.test("a failover's unwritten script and a restarted socket's calls are unavailable, not bugs", () => {
  const cases: [string, unknown][] = [
    ["a Sentinel script no master took", new NotSentError("no master connection took it in time")],
    ["a call on a socket restarted for a missed PING", new DisconnectsClientError()],
    ["a bounded call", new NoAnswerInTimeError("no answer in time")],
    [
      "wrapped as the layers wrap them",
      new Error("Redis at redis://127.0.0.1:6390 is unreachable", { cause: new NotSentError("x") }),
    ],
  ];
  for (const [what, error] of cases) assert(isBackendUnavailable(error), what);
  assert(!isBackendUnavailable(new TypeError("a bug")), "a bug read as an outage");
});
