/**
 * The `main` of a command that opens the server's store (`token`, `createsuperuser`,
 * `changepassword`): `--help`, its arguments, then its run, with the exit codes they share:
 * 0 done, 1 refused, beaten by another change to the same user, or the store could not be
 * reached, 2 a usage mistake.
 */
import {
  asksForHelp,
  type Config,
  loadConfig,
  log,
  secretsOnCommandLine,
  UserChangeConflictError,
} from "../mod.ts";

/**
 * Runs the command `Deno.args` ask for: the usage on `--help`, `parse`'s message and 2 on a
 * mistake, else `run`'s exit code (1 when it rejects: the store could not be reached, or the
 * user it changes kept being changed by something else).
 */
export async function runStoreCommand<Command extends { config: Config }>(
  usage: string,
  parse: (args: string[], env: Record<string, string | undefined>) => Command,
  run: (command: Command) => Promise<number>,
): Promise<never> {
  if (asksForHelp(Deno.args)) {
    console.log(usage);
    Deno.exit(0);
  }
  let command: Command;
  try {
    command = parse(Deno.args, Deno.env.toObject());
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  // Info lines would go to stdout, which holds what the command prints (a token, alone).
  log.setLevel(command.config.logLevel === "silent" ? "silent" : "warn");
  const code = await run(command).catch((error) => {
    console.error(failure(error));
    return 1;
  });
  Deno.exit(code);
}

// What a rejected run says: the store was reached when a change lost to others, and running
// the command again is the remedy, not checking the store.
function failure(error: unknown): string {
  if (error instanceof UserChangeConflictError) {
    return `Error: User ${JSON.stringify(error.username)} was being changed by something else ` +
      "at the same moment; run the command again.";
  }
  return `Could not reach the store: ${(error as Error).message}`;
}

/** The configuration `settings` and `env` give, warning of a secret given as a flag. */
export function commandConfig(
  settings: string[],
  env: Record<string, string | undefined>,
): Config {
  const config = loadConfig(settings, env);
  for (const warning of secretsOnCommandLine(settings)) log.warn(warning);
  return config;
}

/**
 * Why a command that only reads the store must not open it: on the in-process layers, a
 * `DATA_DIR` with nothing there (a typo would become a new, empty store). `null` when it may.
 */
export async function missingDataDir(config: Config): Promise<string | null> {
  if (config.layer !== "memory" && config.layer !== "broadcast") return null;
  try {
    await Deno.stat(config.dataDir);
    return null;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return `No data directory at ${JSON.stringify(config.dataDir)}: is DATA_DIR right? ` +
    "(the server makes it at its first start)";
}
