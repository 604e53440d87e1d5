/**
 * Reading a request body with a size limit, for the handlers that take one (forms, `/_send/`).
 * `request.text()` would buffer whatever a client sends before any check could run.
 *
 * @example
 * ```ts
 * const text = await readBodyText(request, 64 * 1024);
 * if (text === null) return new Response("Too large\n", { status: 413 });
 * ```
 */

/**
 * The body as UTF-8 text, or `null` once it is over `maxBytes` (declared or actual); the rest
 * of it is then not read. A request without a body gives `""`.
 */
export async function readBodyText(request: Request, maxBytes: number): Promise<string | null> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) return null;
  if (request.body === null) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body) {
    total += chunk.byteLength;
    if (total > maxBytes) return null; // leaving the loop cancels the rest of the body
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
