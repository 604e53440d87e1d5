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

/** A password given on stdin: its first line (the newline that ends it is not part of it). */
export async function passwordFromStdin(io: TerminalIo): Promise<string> {
  return (await io.readStdin()).split(/\r?\n/)[0];
}

/** What {@linkcode askNewPassword} got: a password, a cancel (Ctrl-C, Ctrl-D), or no more tries. */
export type NewPasswordAnswer = { password: string } | "cancelled" | "out of tries";

/**
 * Asks for a new password twice, without echo, until `check` takes the pair (it returns the
 * password, or `null` once it has said why not), at most `tries` times.
 */
export async function askNewPassword(
  io: TerminalIo,
  check: (first: string, again: string) => string | null,
  tries: number = Infinity,
): Promise<NewPasswordAnswer> {
  for (let tried = 0; tried < tries; tried++) {
    const first = await io.askSecret("Password: ");
    const again = first === null ? null : await io.askSecret("Password (again): ");
    if (first === null || again === null) return "cancelled";
    const password = check(first, again);
    if (password !== null) return { password };
  }
  return "out of tries";
}
