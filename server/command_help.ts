/**
 * `--help` (or `-h`) anywhere on a command line asks for the command's usage: printed on
 * stdout, with exit code 0, as Unix commands do (a mistake prints it on stderr, with 2). For an
 * app's own commands as for the server's: `settingsHelp()` lists the settings they all take.
 */
import { configFlags } from "./config.ts";

/**
 * Whether `args` ask for the usage: `--help` anywhere, or `-h` first (later, it may be a value:
 * `deno task send lobby -h` sends the text "-h").
 */
export function asksForHelp(args: readonly string[]): boolean {
  return args.includes("--help") || args[0] === "-h";
}

/** The lines that say how the server's settings are given, and which are flags too. */
export function settingsHelp(): string {
  return "  Settings are environment variables (PORT=9000), all listed in the README's\n" +
    "  configuration table. These can be flags too (--port 9000):\n" +
    wrapped(configFlags().join(", "), 96, "    ");
}

// `text` in lines of at most `width` characters, broken after commas, each line indented.
function wrapped(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines.map((each) => `${indent}${each}`).join("\n");
}
