/**
 * Daphne serving the Channels tutorial's project (`tests/fixtures/django_chat/`), as a
 * {@linkcode ServerTarget}: what the Daphne comparison (`scenarios/daphne.ts`) measures this
 * project's server against.
 */
import type { ServerTarget } from "./_servers.ts";

const PYTHON = "/usr/bin/python3";
const FIXTURE = "tests/fixtures/django_chat";

/** Daphne serving the tutorial's project; `REDIS_URL` is given per run. */
export const DAPHNE: ServerTarget = {
  name: "daphne",
  module: `${FIXTURE} (mysite.asgi:application)`,
  denoFlags: [],
  command: PYTHON,
  args: ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "mysite.asgi:application"],
  cwd: FIXTURE,
  env: {
    PYTHONPATH: ".",
    DJANGO_SETTINGS_MODULE: "mysite.settings",
    CHANNELS_PREFIX: "asgi",
  },
  dataDir: false,
  notes: [
    `daphne: ${PYTHON} -m daphne mysite.asgi:application (${FIXTURE}: the Channels ` +
    "tutorial's async ChatConsumer, channels_redis core layer, its defaults), Debian's packages",
  ],
};
