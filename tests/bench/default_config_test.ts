/**
 * The bench measures "ours as `deno task start` runs it" only with every setting at its default:
 * the check must take `deno task start`'s own configuration, and refuse any other.
 */
import { assertThrows } from "@std/assert";
import { assertDefaults } from "../../bench/_servers.ts";

Deno.test("the bench takes an empty environment for the default configuration, and a changed one for not", () => {
  assertDefaults({ PORT: "8123", DATA_DIR: "/tmp/bench-data" }, []);
  assertDefaults({ MAX_CONNECTIONS_PER_ADDRESS: "0" }, ["maxConnectionsPerAddress"]);
  assertThrows(
    () => assertDefaults({ RATE_LIMIT: "1000" }, []),
    Error,
    "Not the default configuration: rateLimit differ",
  );
});
