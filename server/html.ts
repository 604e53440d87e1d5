/**
 * The one escaping helper. Every page is built with the `html` tag: interpolated values are
 * escaped unless they are already {@linkcode SafeHtml} (the result of another `html` call),
 * so user text cannot reach a page unescaped by accident.
 *
 * @example
 * ```ts
 * const name = "<script>";
 * html`<p>Hello ${name}</p>`.toString(); // "<p>Hello &lt;script&gt;</p>"
 * ```
 */
import { escape } from "@std/html";

/** Markup that is already safe to put in a page. */
export class SafeHtml {
  readonly #text: string;
  /** Marks `text` as safe as it is: only for markup that was escaped or written by hand. */
  constructor(text: string) {
    this.#text = text;
  }
  /** The markup, for a response body or another template. */
  toString(): string {
    return this.#text;
  }
}

/** Escapes `&`, `<`, `>`, `"` and `'`. */
export function escapeHtml(text: string): string {
  return escape(text) as string;
}

/** A value `html` accepts: arrays are joined, `null`, `undefined` and `false` show nothing. */
export type Interpolation =
  | SafeHtml
  | string
  | number
  | boolean
  | null
  | undefined
  | Interpolation[];

/** Builds markup, escaping every interpolated value that is not {@linkcode SafeHtml}. */
export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) {
    out += render(values[i]) + strings[i + 1];
  }
  return new SafeHtml(out);
}

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof SafeHtml) return value.toString();
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/** An HTML `Response` with the right content type. */
export function htmlResponse(body: SafeHtml, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "text/html; charset=utf-8");
  return new Response(body.toString(), { ...init, headers });
}
