/**
 * The Channels tutorial's Django project (`tests/fixtures/django_chat/`) for interop tests:
 * served by Daphne on a free port with channels_redis on the test's Redis, and its
 * `group_send.py` run as a Django shell would. Needs Debian's python3 with Django, Channels,
 * channels_redis and Daphne (`.ci/run` installs them).
 */
import { fromFileUrl } from "@std/path";
import { PYTHON, type PythonModules, pythonUnavailable } from "../_support/python.ts";

const DJANGO_CHANNELS: PythonModules = {
  imports: ["django", "channels", "channels_redis", "daphne"],
  label: "Django, Channels, channels_redis and Daphne",
  packages: [
    "python3-django",
    "python3-django-channels",
    "python3-channels-redis",
    "python3-daphne",
  ],
};
const FIXTURE = fromFileUrl(new URL("../fixtures/django_chat/", import.meta.url));
const START_TIMEOUT_MS = 20_000;

/** Where the Django side finds Redis: channels_redis' `hosts` and `prefix`. */
export interface DjangoLayerSettings {
  redisUrl: string;
  prefix: string;
  /** channels_redis' `capacity` on Django's side (its default, 100, when left out). */
  capacity?: number;
  /**
   * Serve the project with Django's log-in (`mysite/settings_auth.py`): its SQLite database
   * (made by {@linkcode djangoCreateUser}) and the secret its who-am-I view asks for.
   */
  auth?: { db: string; secret: string };
}

/** A running Daphne serving the fixture project. */
export interface Daphne {
  /** `ws://127.0.0.1:<port>` */
  readonly wsUrl: string;
  /** The `Origin` a browser on the site would send (the tutorial checks it). */
  readonly origin: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Why the Django side cannot run here, or `null` when it can. Under `CI=true` a missing piece
 * throws instead: nothing is skipped in CI.
 */
export function djangoUnavailable(): Promise<string | null> {
  return pythonUnavailable(DJANGO_CHANNELS, "Django interop tests");
}

function djangoEnv(settings: DjangoLayerSettings): Record<string, string> {
  const auth: Record<string, string> = settings.auth === undefined ? {} : {
    DJANGO_DB: settings.auth.db,
    CHANNELS_WHOAMI_SECRET: settings.auth.secret,
  };
  return {
    PYTHONPATH: FIXTURE,
    DJANGO_SETTINGS_MODULE: settings.auth === undefined
      ? "mysite.settings"
      : "mysite.settings_auth",
    ...auth,
    REDIS_URL: settings.redisUrl,
    CHANNELS_PREFIX: settings.prefix,
    ...(settings.capacity === undefined ? {} : { CHANNELS_CAPACITY: String(settings.capacity) }),
  };
}

/** Starts Daphne on a free port; resolves once it accepts connections. */
export async function startDaphne(settings: DjangoLayerSettings): Promise<Daphne> {
  const port = freePort();
  const child = new Deno.Command(PYTHON, {
    args: ["-m", "daphne", "-b", "127.0.0.1", "-p", String(port), "mysite.asgi:application"],
    cwd: FIXTURE,
    env: djangoEnv(settings),
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const output = new Response(child.stderr).text(); // drained, so Daphne never blocks on it
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await output;
  };
  try {
    await waitUntilListening(port, child);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${await output}`);
  }
  const host = `127.0.0.1:${port}`;
  return { wsUrl: `ws://${host}`, origin: `http://${host}`, [Symbol.asyncDispose]: stop };
}

/**
 * Runs the fixture's `group_send.py`, as a Django view or shell would: `group_send` to
 * `group`, then a `send` to `channel` when given. Rejects with Python's error output.
 */
export async function djangoGroupSend(
  settings: DjangoLayerSettings,
  group: string,
  options: { message: string; channel?: string },
): Promise<void> {
  const args = ["group_send.py", group, options.message];
  if (options.channel) args.push(options.channel);
  const { success, stderr } = await new Deno.Command(PYTHON, {
    args,
    cwd: FIXTURE,
    env: djangoEnv(settings),
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`group_send.py failed:\n${new TextDecoder().decode(stderr)}`);
}

/**
 * `group_send`s of each of `texts` to `group`, one after the other, each awaited, from one Django
 * process, as a view or task that sends several does; with `channel`, each is followed by a
 * `send` of the same text to that channel alone (marked " (to one channel)").
 */
export async function djangoGroupSendEach(
  settings: DjangoLayerSettings,
  group: string,
  texts: string[],
  channel = "",
): Promise<void> {
  const script = "import json, sys\nfrom asgiref.sync import async_to_sync\n" +
    "from channels.layers import get_channel_layer\n" +
    "layer = get_channel_layer()\n" +
    "async def each():\n" +
    "    for text in json.loads(sys.argv[3]):\n" +
    "        await layer.group_send(sys.argv[1], {'type': 'chat.message', 'message': text})\n" +
    "        if sys.argv[2]:\n" +
    "            await layer.send(sys.argv[2], {'type': 'chat.message',\n" +
    "                                           'message': text + ' (to one channel)'})\n" +
    "async_to_sync(each)()\n";
  const { success, stderr } = await new Deno.Command(PYTHON, {
    args: ["-c", script, group, channel, JSON.stringify(texts)],
    cwd: FIXTURE,
    env: djangoEnv(settings),
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`group_send failed:\n${new TextDecoder().decode(stderr)}`);
}

/**
 * Django's `channel_layer.receive(channel)`, as `runworker` does: the event it takes, or a
 * rejection with Python's error output when it fails or nothing arrives within `timeoutMs`.
 */
export async function djangoReceive(
  settings: DjangoLayerSettings,
  channel: string,
  timeoutMs: number,
): Promise<unknown> {
  const script = "import json, sys\nfrom asgiref.sync import async_to_sync\n" +
    "from channels.layers import get_channel_layer\n" +
    "print(json.dumps(async_to_sync(get_channel_layer().receive)(sys.argv[1])))";
  const { success, stdout, stderr } = await new Deno.Command(PYTHON, {
    args: ["-c", script, channel],
    env: djangoEnv(settings),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs), // a lost event would make it wait for ever
  }).output();
  if (!success) {
    throw new Error(`Django's receive failed or timed out: ${new TextDecoder().decode(stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(stdout));
}

/**
 * Makes the project's database (`migrate`, with `settings.auth`) and a user in it, as
 * `manage.py migrate` and `createsuperuser` would.
 */
export async function djangoCreateUser(
  settings: DjangoLayerSettings,
  username: string,
  password: string,
): Promise<void> {
  const script = "import sys, django\ndjango.setup()\n" +
    "from django.core.management import call_command\n" +
    "from django.contrib.auth.models import User\n" +
    "call_command('migrate', verbosity=0)\n" +
    "User.objects.create_user(sys.argv[1], password=sys.argv[2])\n";
  const { success, stderr } = await new Deno.Command(PYTHON, {
    args: ["-c", script, username, password],
    env: djangoEnv(settings),
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`migrate failed:\n${new TextDecoder().decode(stderr)}`);
}

async function waitUntilListening(port: number, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`Daphne exited at start on port ${port}`);
    try {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port });
      connection.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`Daphne on port ${port} was not listening within ${START_TIMEOUT_MS} ms`);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
