/** The admin page's count of groups across processes: never a group counted twice as exact. */
import { assertEquals } from "@std/assert";
import { groupsTotal } from "../../static/admin_totals.js";

Deno.test("one process: its own count of groups, exact", () => {
  assertEquals(groupsTotal([{ groups: 8 }], 7, 8), "8");
});

Deno.test("two processes sharing groups: at least the most of one, at most the sum", () => {
  // 8 and 6 groups, 7 distinct named (a session group is never named): 8 to 14, not 14.
  assertEquals(groupsTotal([{ groups: 8 }, { groups: 6 }], 7, 14), "8–14");
  // Two processes with no group in common, every group named: exact.
  assertEquals(groupsTotal([{ groups: 3 }, { groups: 2 }], 5, 5), "5");
});
