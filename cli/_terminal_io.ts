/**
 * How the account commands (`createsuperuser`, `changepassword`) talk to their user: questions
 * on the terminal, secrets read without echo, stdin when there is no terminal.
 */
import { HiddenLine } from "./_hidden_line.ts";

/** How a command talks to its user; tests pass their own. */
export interface TerminalIo {
  /** Asks a question and returns the answer; `null` at the end of input. */
  ask(question: string): Promise<string | null>;
  /** Asks for a secret without echoing it; `null` at the end of input. */
  askSecret(question: string): Promise<string | null>;
  /** Reads all of stdin. */
  readStdin(): Promise<string>;
  /** Whether there is someone to ask (a terminal). */
  interactive: boolean;
  /** Prints a line for the user (stderr). */
  say(line: string): void;
}

/** Reads a line from the terminal without echoing it. */
async function readHidden(question: string): Promise<string | null> {
  const encoder = new TextEncoder();
  // Raw before the question shows: a Ctrl-C typed at once is the line's, not a SIGINT.
  Deno.stdin.setRaw(true);
  const line = new HiddenLine();
  const buffer = new Uint8Array(64);
  try {
    await Deno.stderr.write(encoder.encode(question));
    for (;;) {
      const read = await Deno.stdin.read(buffer);
      if (read === null) return null;
      for (const byte of buffer.subarray(0, read)) {
        const state = line.take(byte);
        if (state === "done") return line.text;
        if (state === "cancelled") return null;
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
}

/** The terminal and stdin. */
export function terminalIo(): TerminalIo {
  return {
    interactive: Deno.stdin.isTerminal(),
    ask: (question) => Promise.resolve(prompt(question.trimEnd())),
    askSecret: readHidden,
    readStdin: () => new Response(Deno.stdin.readable).text(),
    say: (line) => console.error(line),
  };
}
