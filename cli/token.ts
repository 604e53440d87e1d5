/**
 * `deno task token <username> [--revoke-all] [settings]`: makes an access token for a user and
 * prints it (alone on stdout, so `TOKEN=$(deno task token ada)` works), or revokes all of the
 * user's tokens and closes the sockets open with them. It opens the store the configuration
 * names (`LAYER`, `DATA_DIR`, `REDIS_URL` and the other settings, as flags or environment
 * variables), as the server does.
 *
 * Exit codes: 0 done, 1 no such user, the store could not be opened, or (Redis) the servers could
 * not be told to close the revoked tokens' sockets, 2 a usage mistake.
 */
import {
  closeTokenSockets,
  type Config,
  createServices,
  layerCrossesProcesses,
  openBackends,
  REVOCATION_CHECK_MS,
  type Services,
  TooManyTokensError,
} from "../mod.ts";
import { commandConfig, missingDataDir, runStoreCommand } from "./_store_command.ts";

const USAGE = "Usage: deno task token <username> [--revoke-all] [--data-dir DIR | --layer ...]";

/** What the command line asked for. */
export interface TokenCommand {
  /** The user the token is for. */
  username: string;
  /** Revoke the user's tokens instead of making one. */
  revokeAll: boolean;
  /** Where the users and tokens are. */
  config: Config;
}

/** Parses the arguments; throws an `Error` with the usage on a mistake. */
export function parseTokenArgs(
  args: string[],
  env: Record<string, string | undefined>,
): TokenCommand {
  const [username, ...rest] = args;
  if (username === undefined || username.startsWith("--") || username.trim() === "") {
    throw new Error(USAGE);
  }
  const revokeAll = rest.includes("--revoke-all");
  const settings = rest.filter((arg) => arg !== "--revoke-all");
  return { username, revokeAll, config: commandConfig(settings, env) };
}

/** Runs the command; resolves with the exit code. */
export async function runTokenCommand(command: TokenCommand): Promise<number> {
  const { config } = command;
  // It only looks users up: a mistyped DATA_DIR must not become a new, empty one.
  const missing = await missingDataDir(config);
  if (missing !== null) {
    console.error(missing);
    return 1;
  }
  // Beside a running server, on its data: the server holds DATA_DIR.
  const backends = await openBackends(command.config, { holdDataDir: false });
  try {
    const services = createServices(command.config, backends);
    const user = await services.users.find(command.username);
    if (user === null) {
      console.error(
        `No user named ${JSON.stringify(command.username)} in ${where(command.config)}`,
      );
      return 1;
    }
    if (command.revokeAll) {
      const revoked = await services.tokens.revokeAll(user.username);
      console.error(
        `Revoked ${revoked} token${revoked === 1 ? "" : "s"} of ${JSON.stringify(user.username)}`,
      );
      return revoked === 0 ? 0 : await closeOpenSockets(command.config, services, user.username);
    }
    let issued;
    try {
      issued = await services.tokens.create(user.username);
    } catch (error) {
      if (!(error instanceof TooManyTokensError)) throw error;
      console.error(`${error.message} (deno task token ${user.username} --revoke-all)`);
      return 1;
    }
    console.log(issued.token);
    console.error(
      `A token for ${JSON.stringify(user.username)}, valid until ` +
        `${new Date(issued.expiresAt).toISOString()}. Send it as "Authorization: Bearer <token>" ` +
        `or "?token=<token>"; revoke with: deno task token ${user.username} --revoke-all`,
    );
    return 0;
  } finally {
    await backends.close();
  }
}

// Over Redis, this process's send reaches every server, and says how many it reached. On the
// in-process layers it would reach no one: the server reads the revocation stamp revokeAll
// wrote, at its next check.
async function closeOpenSockets(
  config: Config,
  services: Services,
  username: string,
): Promise<number> {
  if (!layerCrossesProcesses(config)) {
    const seconds = REVOCATION_CHECK_MS / 1000;
    console.error(`A running server closes the sockets open with them within ${seconds} seconds`);
    return 0;
  }
  try {
    const { remoteProcesses } = await closeTokenSockets(services.layer, username);
    const processes = `${remoteProcesses} server process${remoteProcesses === 1 ? "" : "es"}`;
    console.error(
      remoteProcesses === 0
        ? "No server had a socket open with them"
        : `Told ${processes} to close the sockets open with them`,
    );
    return 0;
  } catch (error) {
    console.error(
      `Could not tell the servers to close the sockets open with them: ${
        (error as Error).message
      } (a socket reconnecting with a revoked token is refused)`,
    );
    return 1;
  }
}

function where(config: Config): string {
  return config.layer === "memory" || config.layer === "broadcast"
    ? `the data directory ${JSON.stringify(config.dataDir)}`
    : `Redis (prefix ${JSON.stringify(config.redisPrefix)})`;
}

if (import.meta.main) await runStoreCommand(USAGE, parseTokenArgs, runTokenCommand);
