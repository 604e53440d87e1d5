/**
 * The settings of the chat rooms' streams (`HISTORY_*`): each room's window, what every room's
 * window may hold in memory together, and how long a room left idle keeps its stored history.
 */
import { type Config, DEFAULT_CONFIG, type Env } from "./_config_schema.ts";
import { integer } from "./_config_values.ts";

/** What the chat rooms' streams keep for recovery: per room, in all, and for how long. */
export function historySettings(
  env: Env,
): Pick<Config, "historyWindow" | "historyMemoryMb" | "historyIdleDays"> {
  const d = DEFAULT_CONFIG;
  const settings = {
    historyWindow: {
      messages: integer(
        "HISTORY_WINDOW_MESSAGES",
        env.HISTORY_WINDOW_MESSAGES,
        d.historyWindow.messages,
        50,
        100_000,
      ),
      seconds: integer(
        "HISTORY_WINDOW_SECONDS",
        env.HISTORY_WINDOW_SECONDS,
        d.historyWindow.seconds,
        0,
        7 * 24 * 3600,
      ),
    },
    historyMemoryMb: integer(
      "HISTORY_MEMORY_MB",
      env.HISTORY_MEMORY_MB,
      d.historyMemoryMb,
      1,
      65536,
    ),
    historyIdleDays: integer(
      "HISTORY_IDLE_DAYS",
      env.HISTORY_IDLE_DAYS,
      d.historyIdleDays,
      1,
      3650,
    ),
  };
  // Else Deno KV would drop messages the window promises to keep, before they are old enough.
  if (settings.historyIdleDays * 24 * 3600 < settings.historyWindow.seconds) {
    throw new Error(
      `HISTORY_IDLE_DAYS (${settings.historyIdleDays} days) must keep a room at least as long as ` +
        `HISTORY_WINDOW_SECONDS (${settings.historyWindow.seconds} s): set HISTORY_IDLE_DAYS to ` +
        `at least ${
          Math.ceil(settings.historyWindow.seconds / 86400)
        }, or HISTORY_WINDOW_SECONDS ` +
        `to at most ${settings.historyIdleDays * 86400}`,
    );
  }
  return settings;
}
