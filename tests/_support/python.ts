/**
 * Debian's python3 for tests that run Python beside the server: whether it can import what a
 * test needs, with the reason and the packages to install when it cannot. Under `CI=true` a
 * missing piece throws instead: nothing is skipped in CI.
 */

/** The interpreter the Python-side tests run (Debian's, where `apt-get` installs modules). */
export const PYTHON = "/usr/bin/python3";

/** What a test needs from {@linkcode PYTHON}. */
export interface PythonModules {
  /** The names given to `import`, e.g. `["websocket"]`. */
  imports: string[];
  /** How a reader knows them, for the reason, e.g. `"websocket-client"`. */
  label: string;
  /** The Debian packages that provide them. */
  packages: string[];
}

/** `websocket-client`, which the tutorials' Python clients use. */
export const WEBSOCKET_CLIENT: PythonModules = {
  imports: ["websocket"],
  label: "websocket-client",
  packages: ["python3-websocket"],
};

/**
 * Why {@linkcode PYTHON} cannot import `modules` here, or `null` when it can. Under `CI=true`
 * a missing piece throws `<tests> under CI=true: <reason>`.
 */
export async function pythonUnavailable(
  modules: PythonModules,
  tests: string,
): Promise<string | null> {
  const reason = await probe(modules);
  if (reason !== null && Deno.env.get("CI") === "true") {
    throw new Error(`${tests} under CI=true: ${reason}`);
  }
  return reason;
}

async function probe({ imports, label, packages }: PythonModules): Promise<string | null> {
  try {
    const { success, stderr } = await new Deno.Command(PYTHON, {
      args: ["-c", `import ${imports.join(", ")}`],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (success) return null;
    const why = new TextDecoder().decode(stderr).trim().split("\n").at(-1);
    return `${PYTHON} cannot import ${label} (apt-get install ${packages.join(" ")}): ${why}`;
  } catch (error) {
    return `${PYTHON} cannot be run: ${(error as Error).message}`;
  }
}
