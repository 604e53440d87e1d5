/**
 * A store command whose run rejects, for the tests of what the store commands print then:
 * `conflict` as a user change that other changes kept beating does, anything else as a store
 * that cannot be reached does.
 */
import { DEFAULT_CONFIG, UserChangeConflictError } from "../../mod.ts";
import { runStoreCommand } from "../../cli/_store_command.ts";

await runStoreCommand(
  "Usage: rejecting_store_command.ts conflict|outage",
  (args) => ({ kind: args[0], config: { ...DEFAULT_CONFIG, logLevel: "silent" } }),
  ({ kind }) =>
    Promise.reject(
      kind === "conflict"
        ? new UserChangeConflictError("ada")
        : new Error("Connection refused (os error 111)"),
    ),
);
