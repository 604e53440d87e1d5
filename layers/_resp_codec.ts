/**
 * RESP2, the Redis protocol, as the lean connection (`_resp_connection.ts`) speaks it: commands
 * out as arrays of bulk strings, replies in, read from a buffer that may end anywhere.
 */

const CR = 0x0d;
const NON_ASCII = /[\u0080-\uffff]/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A reply: a string, a number, `null`, or an array of replies. Errors reject the command. */
export type RespReply = string | number | null | RespReply[];

/** A reply being read: the value and where the next one starts, or `undefined` if cut short. */
export type Parsed = { value: RespReply | Error; next: number } | undefined;

/**
 * `args` as one RESP2 command: an array of bulk strings, lengths in UTF-8 bytes. A length is
 * that of `TextEncoder`'s output, which the command is written with (a lone surrogate becomes
 * 3 bytes there), so not `utf8Length`'s estimate.
 */
export function encodeCommand(args: string[]): string {
  let text = `*${args.length}\r\n`;
  for (const arg of args) {
    const bytes = NON_ASCII.test(arg) ? encoder.encode(arg).length : arg.length;
    text += `$${bytes}\r\n${arg}\r\n`;
  }
  return text;
}

/**
 * Reads one RESP2 reply from `bytes[start, end)`: its value (an `Error` for an error reply)
 * and where the next reply starts; `undefined` when the bytes end before the reply does.
 */
export function parse(bytes: Uint8Array, start: number, end: number): Parsed {
  const lineEnd = bytes.indexOf(CR, start + 1);
  if (lineEnd < 0 || lineEnd + 1 >= end) return undefined;
  const type = bytes[start];
  const next = lineEnd + 2;
  switch (type) {
    case 0x2b: // +simple string
      return { value: decoder.decode(bytes.subarray(start + 1, lineEnd)), next };
    case 0x2d: // -error
      return { value: new Error(decoder.decode(bytes.subarray(start + 1, lineEnd))), next };
    case 0x3a: // :integer
      return { value: integerAt(bytes, start + 1, lineEnd), next };
    case 0x24: { // $bulk string
      const length = integerAt(bytes, start + 1, lineEnd);
      if (length < 0) return { value: null, next };
      if (next + length + 2 > end) return undefined;
      return {
        value: decoder.decode(bytes.subarray(next, next + length)),
        next: next + length + 2,
      };
    }
    case 0x2a: { // *array
      const count = integerAt(bytes, start + 1, lineEnd);
      if (count < 0) return { value: null, next };
      const items: RespReply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(bytes, at, end);
        if (item === undefined) return undefined;
        // An error inside an array (a script's `redis.error_reply` in a table) is its text.
        items.push(item.value instanceof Error ? item.value.message : item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`Not a RESP2 reply: starts with byte ${type}`);
  }
}

function integerAt(bytes: Uint8Array, start: number, end: number): number {
  let value = 0;
  let sign = 1;
  let at = start;
  if (bytes[at] === 0x2d) {
    sign = -1;
    at++;
  }
  for (; at < end; at++) value = value * 10 + (bytes[at] - 0x30);
  return sign * value;
}
