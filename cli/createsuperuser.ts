/**
 * `deno task createsuperuser [--username NAME] [--password-stdin] [settings]`: makes a staff
 * account, which may open the admin page, as Django's `createsuperuser` does. It asks for the
 * username and for the password twice (not echoed), and checks them with the sign-up rules.
 * An existing user is made staff, keeping their password.
 *
 * Without a terminal: `--username ada` with the password on stdin (`--password-stdin`) or in
 * `SUPERUSER_PASSWORD`. It opens the store the configuration names (`LAYER`, `DATA_DIR`,
 * `REDIS_URL` and the other settings, as flags or environment variables), as the server does.
 *
 * Exit codes: 0 done, 1 refused by the rules, cancelled at a prompt (Ctrl-C, Ctrl-D) or the store
 * could not be opened, 2 a usage mistake.
 */
import { type Config, createServices, isValid, openBackends, signUpErrors } from "../mod.ts";
import { RESERVED_USERNAMES } from "../consumers/reserved_names.ts";
import { commandConfig, runStoreCommand } from "./_store_command.ts";
import { askNewPassword, passwordFromStdin, type TerminalIo, terminalIo } from "./_terminal_io.ts";

const USAGE = "Usage: deno task createsuperuser [--username NAME] [--password-stdin] " +
  "[--data-dir DIR | --layer ...]";

/** What the command line asked for. */
export interface SuperuserCommand {
  /** The username given with `--username`, or `null` to ask for it. */
  username: string | null;
  /** Read the password from stdin (one line) instead of asking. */
  passwordStdin: boolean;
  /** The password from `SUPERUSER_PASSWORD`, or `null`. */
  passwordEnv: string | null;
  /** Where the users are. */
  config: Config;
}

/** How the command talks to its user; tests pass their own. */
export type SuperuserIo = TerminalIo;

/** Parses the arguments; throws an `Error` with the usage on a mistake. */
export function parseSuperuserArgs(
  args: string[],
  env: Record<string, string | undefined>,
): SuperuserCommand {
  let username: string | null = null;
  let passwordStdin = false;
  const settings: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--username" || arg.startsWith("--username=")) {
      // Trimmed, as the prompt, the sign-up and the log-in forms trim it.
      username = (arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i] ?? "").trim();
      if (username === "" || username.startsWith("--")) throw new Error(USAGE);
    } else if (arg === "--password-stdin") passwordStdin = true;
    else if (arg === "--help" || arg === "-h" || !arg.startsWith("--")) throw new Error(USAGE);
    else if (arg.includes("=") || (args[i + 1] ?? "--").startsWith("--")) settings.push(arg);
    else settings.push(arg, args[++i]); // `--data-dir DIR`, as the usage line writes it
  }
  const passwordEnv = env.SUPERUSER_PASSWORD || null;
  return { username, passwordStdin, passwordEnv, config: commandConfig(settings, env) };
}

/** Runs the command; resolves with the exit code. */
export async function runCreateSuperuser(
  command: SuperuserCommand,
  io: SuperuserIo,
): Promise<number> {
  // Beside a running server, on its data: the server holds DATA_DIR.
  const backends = await openBackends(command.config, { holdDataDir: false });
  try {
    const { users } = createServices(command.config, backends);
    let username: string | null = null;
    // A name is checked as it is entered, and asked again, as Django's createsuperuser does.
    for (;;) {
      const asked = command.username ?? await askUsername(io);
      if (asked === CANCELLED) return 1;
      if (asked === null) return 2;
      username = asked;
      const existing = await users.find(username);
      if (existing !== null) {
        if (existing.staff) io.say(`${JSON.stringify(existing.username)} is staff already.`);
        else {
          await users.setStaff(existing.username, true);
          io.say(`${JSON.stringify(existing.username)} is now staff (password unchanged).`);
        }
        return 0;
      }
      const problems = usernameProblems(username);
      if (problems.length === 0 && await users.lookalikeOf(username) !== null) {
        problems.push("This username looks like one that already exists.");
      }
      if (problems.length === 0) break;
      for (const problem of problems) io.say(`Error: ${problem}`);
      if (command.username !== null) return 1; // given on the command line: nothing to ask
    }
    const password = await readPassword(command, io, username);
    if (password === null) return 1;
    const user = await users.create(username, password, { staff: true });
    if (user === null) {
      io.say("That username was taken meanwhile; run the command again to make it staff.");
      return 1;
    }
    io.say(`Superuser ${JSON.stringify(user.username)} created.`);
    return 0;
  } finally {
    await backends.close();
  }
}

// Ctrl-C or the end of input at a prompt: said as Django's createsuperuser says it (exit 1).
const CANCELLED = Symbol("cancelled");

function cancelled(io: SuperuserIo): typeof CANCELLED {
  io.say("Operation cancelled: no user was created.");
  return CANCELLED;
}

// The name typed, `null` with no terminal to ask on (a usage mistake), or CANCELLED.
async function askUsername(io: SuperuserIo): Promise<string | null | typeof CANCELLED> {
  if (!io.interactive) {
    io.say(`No terminal to ask for a username: pass --username.\n${USAGE}`);
    return null;
  }
  for (;;) {
    const answer = await io.ask("Username: ");
    if (answer === null) return cancelled(io);
    if (answer.trim() !== "") return answer.trim();
    io.say("Error: This field cannot be blank.");
  }
}

// The password from stdin or the environment (checked once), or asked twice until it passes.
async function readPassword(
  command: SuperuserCommand,
  io: SuperuserIo,
  username: string,
): Promise<string | null> {
  const given = command.passwordStdin ? await passwordFromStdin(io) : command.passwordEnv;
  if (given !== null) return checked(io, username, given, given);
  if (!io.interactive) {
    io.say("No terminal to ask for a password: use --password-stdin or SUPERUSER_PASSWORD.");
    return null;
  }
  const answer = await askNewPassword(io, (first, again) => checked(io, username, first, again));
  if (typeof answer === "object") return answer.password;
  cancelled(io); // it asks until a password passes: only a cancel ends it
  return null;
}

// What is wrong with a new account's name (the sign-up rules, the site's reserved names).
function usernameProblems(username: string): string[] {
  return signUpErrors({ username, password1: "", password2: "" }, RESERVED_USERNAMES).username;
}

function checked(io: SuperuserIo, username: string, first: string, again: string): string | null {
  const errors = signUpErrors(
    { username, password1: first, password2: again },
    RESERVED_USERNAMES,
  );
  if (isValid(errors)) return first;
  for (const message of [...errors.username, ...errors.password1, ...errors.password2]) {
    io.say(`Error: ${message}`);
  }
  return null;
}

if (import.meta.main) {
  await runStoreCommand(
    USAGE,
    parseSuperuserArgs,
    (command) => runCreateSuperuser(command, terminalIo()),
  );
}
