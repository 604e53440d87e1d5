/**
 * The wrapper over `console.log` while Sentinel clients are open (node-redis prints each failed
 * search for a master there): what it does to everyone else's prints.
 */
import { assert, assertEquals } from "@std/assert";
import { divertSentinelPrints } from "../../storage/_sentinel_console.ts";

Deno.test("a console.log kept while a Sentinel client was open still prints after it closed", () => {
  const original = console.log;
  const printed: unknown[][] = [];
  console.log = (...args: unknown[]) => void printed.push(args);
  const underneath = console.log;
  try {
    const release = divertSentinelPrints();
    const kept = console.log; // as `const out = console.log` in a module loaded meanwhile
    kept("while open");
    release();
    assertEquals(console.log, underneath, "the console is back as it was");
    kept("after the close");
    assertEquals(printed, [["while open"], ["after the close"]]);
  } finally {
    console.log = original;
  }
});

Deno.test("a console.log put back over the wrapper is wrapped again for the next Sentinel client", () => {
  const original = console.log;
  try {
    const stubbed = (..._args: unknown[]) => {};
    console.log = stubbed; // a test's stub, undone while the client is open
    const first = divertSentinelPrints();
    console.log = original;
    first();
    assertEquals(console.log, original);
    const second = divertSentinelPrints();
    assert(console.log !== original, "the next client's prints are diverted again");
    second();
    assertEquals(console.log, original);
  } finally {
    console.log = original;
  }
});
