/**
 * Reading a request body with a size limit, for the handlers that take one (forms, `/_send/`).
 * `request.text()` would buffer whatever a client sends before any check could run.
 *
 * @example
 * ```ts
 * import { type Handler, readBodyText } from "@channels/deno";
 *
 * const upload: Handler = async (request) => {
 *   const text = await readBodyText(request, 64 * 1024);
 *   if (text === null) return new Response("Too large\n", { status: 413 });
 *   return new Response(`Read ${text.length} characters\n`);
 * };
 * ```
 */

/**
 * How long a body may send nothing before it is given up on (nginx's `client_body_timeout`
 * waits 60 s): a client that stops half-way must not hold its request, and its memory, for good.
 */
export const BODY_IDLE_MS = 60_000;

/**
 * The client stopped before its body was whole (a lost connection, a cut upload, nothing sent
 * for {@linkcode BODY_IDLE_MS}): the client's failure, answered 400 by the app, not a bug.
 */
export class BodyCutShortError extends Error {
  /** An error whose message says how the body ended. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BodyCutShortError";
  }
}

/** A body read with `fatal: true` held bytes that are not UTF-8: the client's error (400). */
export class BodyNotUtf8Error extends Error {
  /** An error that says the body is not UTF-8. */
  constructor(options?: ErrorOptions) {
    super("The body is not valid UTF-8", options);
    this.name = "BodyNotUtf8Error";
  }
}

/**
 * The body as UTF-8 text, or `null` once it is over `maxBytes` (declared or actual); the rest
 * of it is then not read. A request without a body gives `""`. Rejects with a
 * {@linkcode BodyCutShortError} when the body stops before its end, or sends nothing for
 * `idleMs` (default {@linkcode BODY_IDLE_MS}). Bytes that are not UTF-8 read as U+FFFD, as a
 * form's do in Django; with `fatal: true` (a JSON body, which must be UTF-8) they throw a
 * {@linkcode BodyNotUtf8Error} instead.
 */
export async function readBodyText(
  request: Request,
  maxBytes: number,
  options: { idleMs?: number; fatal?: boolean } = {},
): Promise<string | null> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) return null;
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await readWithin(reader, options.idleMs ?? BODY_IDLE_MS);
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) return null;
      chunks.push(value);
    }
  } finally {
    // What was not read (a body over the limit, one given up on) is not read at all.
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: options.fatal === true }).decode(bytes);
  } catch (error) {
    throw new BodyNotUtf8Error({ cause: error });
  }
}

// One read of the body, or a `BodyCutShortError` when it fails or sends nothing for `idleMs`.
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BodyCutShortError(`the request body sent nothing for ${idleMs / 1000} s`)),
      idleMs,
    );
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } catch (error) {
    if (error instanceof BodyCutShortError) throw error;
    throw new BodyCutShortError(`the request body was cut short: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}
