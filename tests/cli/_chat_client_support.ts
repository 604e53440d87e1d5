/** What the terminal client's process test files share: starting it, and reading what it says. */

/** The terminal client of `room` at `url`, run as a process with `env` and its streams piped. */
export function startClient(
  url: string,
  room: string,
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "cli/chat_client.ts", room, "--url", url],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** What `reader` gives up to and including `needle`; throws if it ends before. */
export async function readUntilReader(
  reader: ReadableStreamDefaultReader<string>,
  needle: string,
): Promise<string> {
  let text = "";
  while (!text.includes(needle)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Output ended before "${needle}": ${text}`);
    text += value;
  }
  return text;
}

/** What `reader` gives until it ends. */
export async function readRest(reader: ReadableStreamDefaultReader<string>): Promise<string> {
  let text = "";
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    text += chunk.value;
  }
  return text;
}
