/**
 * The orchestrator's handle on the load generator process (`load_generator.ts`): one request
 * at a time, one JSON line each way.
 */
import { fromFileUrl } from "@std/path";
import type {
  CloseRequest,
  ConnectRequest,
  ConnectResult,
  GeneratorRequest,
  TrafficRequest,
  TrafficResult,
} from "./_protocol.ts";
import { type ProcSample, sampleProcess } from "./_proc.ts";

const MODULE = fromFileUrl(new URL("./load_generator.ts", import.meta.url));
const REQUEST_TIMEOUT_MS = 180_000;

/** A running load generator. */
export class LoadGenerator implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #busy: Promise<unknown> = Promise.resolve();
  #encoder = new TextEncoder();
  #stderr: string[] = [];

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = readLines(child.stdout)[Symbol.asyncIterator]();
    void (async () => {
      for await (const line of readLines(child.stderr)) {
        this.#stderr.push(line);
        if (this.#stderr.length > 20) this.#stderr.shift();
      }
    })();
  }

  /** Starts a generator process. */
  static start(): LoadGenerator {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MODULE],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new LoadGenerator(child);
  }

  /** The generator's own CPU and memory: a busy generator limits what can be measured. */
  sample(): ProcSample {
    return sampleProcess(this.#child.pid);
  }

  /** Opens clients. */
  connect(request: Omit<ConnectRequest, "op">): Promise<ConnectResult> {
    return this.#request({ op: "connect", ...request }) as Promise<ConnectResult>;
  }

  /** Runs paced traffic and reports what was received. */
  traffic(request: Omit<TrafficRequest, "op">): Promise<TrafficResult> {
    return this.#request({ op: "traffic", ...request }) as Promise<TrafficResult>;
  }

  /** Closes a client set. */
  close(set: CloseRequest["set"]): Promise<unknown> {
    return this.#request({ op: "close", set });
  }

  /** Ends the process (closing its connections). */
  async stop(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await this.#child.status;
    clearTimeout(timer);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #request(request: GeneratorRequest): Promise<unknown> {
    const run = this.#busy.then(async () => {
      await this.#writer.write(this.#encoder.encode(JSON.stringify(request) + "\n"));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Load generator did not answer "${request.op}" in time`)),
          REQUEST_TIMEOUT_MS,
        );
      });
      const next = await Promise.race([this.#lines.next(), timeout]).finally(() =>
        clearTimeout(timer)
      );
      if (next.done) {
        throw new Error(`Load generator exited:\n${this.#stderr.join("\n")}`);
      }
      const answer = JSON.parse(next.value) as { ok: boolean; result?: unknown; error?: string };
      if (!answer.ok) throw new Error(`Load generator: ${answer.error}`);
      return answer.result;
    });
    this.#busy = run.catch(() => {});
    return run;
  }
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered !== "") yield buffered;
}
