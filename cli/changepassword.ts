/**
 * `deno task changepassword <username> [settings]`: sets a user's password, as Django's
 * `manage.py changepassword` does. It asks for the new password twice (not echoed), up to three
 * times, and checks it with the sign-up rules; without a terminal it reads one line from stdin,
 * checked once. Every session of the user ends: the next page or handshake of each is anonymous.
 * Their open sockets close at once where the layer reaches the server (`LAYER=redis`); over an
 * in-process layer, within {@linkcode PASSWORD_CHANGE_CHECK_MS}, when the server reads the
 * store's password-change stamp. Access tokens are kept.
 *
 * It opens the store the configuration names (`LAYER`, `DATA_DIR`, `REDIS_URL` and the other
 * settings, as flags or environment variables), as the server does.
 *
 * Exit codes: 0 changed, 1 no such user, refused by the rules, cancelled or too many attempts,
 * or the store could not be opened, 2 a usage mistake.
 */
import {
  changePassword,
  type Config,
  createServices,
  layerCrossesProcesses,
  newPasswordErrors,
  openBackends,
  PASSWORD_CHANGE_CHECK_MS,
} from "../mod.ts";
import { commandConfig, missingDataDir, runStoreCommand } from "./_store_command.ts";
import { askNewPassword, passwordFromStdin, type TerminalIo, terminalIo } from "./_terminal_io.ts";

const USAGE = "Usage: deno task changepassword <username> [--data-dir DIR | --layer ...]";
// As Django's changepassword: three tries at the prompt, then it gives up.
const MAX_TRIES = 3;

/** What the command line asked for. */
export interface ChangePasswordCommand {
  /** Whose password changes. */
  username: string;
  /** Where the users and sessions are. */
  config: Config;
}

/** Parses the arguments; throws an `Error` with the usage on a mistake. */
export function parseChangePasswordArgs(
  args: string[],
  env: Record<string, string | undefined>,
): ChangePasswordCommand {
  let username: string | null = null;
  const settings: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) {
      if (username !== null || arg.trim() === "") throw new Error(USAGE);
      username = arg.trim(); // as the forms trim it
    } else if (arg.includes("=") || (args[i + 1] ?? "--").startsWith("--")) settings.push(arg);
    else settings.push(arg, args[++i]); // `--data-dir DIR`, as the usage line writes it
  }
  if (username === null) throw new Error(USAGE);
  return { username, config: commandConfig(settings, env) };
}

/** Runs the command; resolves with the exit code. */
export async function runChangePassword(
  command: ChangePasswordCommand,
  io: TerminalIo,
): Promise<number> {
  // It only changes a user it finds: a mistyped DATA_DIR must not become a new, empty one.
  const missing = await missingDataDir(command.config);
  if (missing !== null) {
    io.say(`Error: ${missing}`);
    return 1;
  }
  // Beside a running server, on its data: the server holds DATA_DIR.
  const backends = await openBackends(command.config, { holdDataDir: false });
  try {
    const services = createServices(command.config, backends);
    const user = await services.users.find(command.username);
    if (user === null) {
      io.say(`Error: User ${JSON.stringify(command.username)} does not exist.`);
      return 1;
    }
    const password = await readPassword(io, user.username);
    if (password === null) return 1;
    const changed = await changePassword(services, user.username, password);
    if (changed === null) {
      io.say(`Error: User ${JSON.stringify(user.username)} no longer exists.`);
      return 1;
    }
    io.say(`Password changed successfully for user ${JSON.stringify(user.username)}.`);
    io.say(endedSessions(changed.endedSessions, layerCrossesProcesses(command.config)));
    return 0;
  } finally {
    await backends.close();
  }
}

// What became of the user's sessions, and of their sockets: this process reaches a server's
// sockets only through a layer that crosses processes; on the others, the server reads the
// stamp the change wrote, at its next check.
function endedSessions(count: number, layerReachesServers: boolean): string {
  const ended = `Ended ${count} session${count === 1 ? "" : "s"}: their next page or ` +
    "connection is logged out.";
  if (count === 0 || layerReachesServers) return ended;
  const seconds = PASSWORD_CHANGE_CHECK_MS / 1000;
  return `${ended} A running server closes their open WebSockets within ${seconds} seconds.`;
}

// The new password from stdin (checked once), or asked twice, up to MAX_TRIES times.
async function readPassword(io: TerminalIo, username: string): Promise<string | null> {
  if (!io.interactive) {
    const given = await passwordFromStdin(io);
    return checked(io, username, given, given);
  }
  io.say(`Changing password for user ${JSON.stringify(username)}`);
  const answer = await askNewPassword(
    io,
    (first, again) => checked(io, username, first, again),
    MAX_TRIES,
  );
  if (answer === "cancelled") io.say("Operation cancelled: the password was not changed.");
  else if (answer === "out of tries") {
    io.say(
      `Aborting password change for user ${JSON.stringify(username)} after ${MAX_TRIES} attempts`,
    );
  } else return answer.password;
  return null;
}

function checked(io: TerminalIo, username: string, first: string, again: string): string | null {
  const errors = newPasswordErrors(first, again, username);
  const problems = [...errors.password1, ...errors.password2];
  for (const problem of problems) io.say(`Error: ${problem}`);
  return problems.length === 0 ? first : null;
}

if (import.meta.main) {
  await runStoreCommand(
    USAGE,
    parseChangePasswordArgs,
    (command) => runChangePassword(command, terminalIo()),
  );
}
