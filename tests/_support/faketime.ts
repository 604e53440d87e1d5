/**
 * Whether a test can run a process under libfaketime (`faketime`, Debian's package of that
 * name), for clocks that disagree. Prints why not and skips locally; throws under `CI=true`,
 * where nothing is skipped.
 */
let found: Promise<boolean> | undefined;

/** True when `faketime` runs here; prints the reason to skip, or throws under `CI=true`. */
export function faketimeAvailable(): Promise<boolean> {
  return found ??= (async () => {
    let reason = "";
    try {
      const probe = new Deno.Command("faketime", { args: ["-f", "+0s", "true"], stderr: "null" });
      const { success } = await probe.output();
      if (!success) reason = "faketime is installed but does not run (apt-get install faketime)";
    } catch {
      reason = "faketime is not installed (apt-get install faketime)";
    }
    if (reason === "") return true;
    if (Deno.env.get("CI") === "true") {
      throw new Error(`Clock-skew tests cannot run under CI=true: ${reason}`);
    }
    console.log(`Skipping clock-skew tests: ${reason}`);
    return false;
  })();
}
