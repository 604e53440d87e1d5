/**
 * The `main` of a command that opens the server's store (`token`, `createsuperuser`,
 * `changepassword`): `--help`, its arguments, then its run, with the exit codes they share:
 * 0 done, 1 refused or the store could not be reached, 2 a usage mistake.
 */
import { type Config, log } from "../mod.ts";
import { asksForHelp } from "./_help.ts";

/**
 * Runs the command `Deno.args` ask for: the usage on `--help`, `parse`'s message and 2 on a
 * mistake, else `run`'s exit code (1 when it rejects: the store could not be reached).
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
    console.error(`Could not reach the store: ${(error as Error).message}`);
    return 1;
  });
  Deno.exit(code);
}
