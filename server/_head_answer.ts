/**
 * The answer to a HEAD: its GET's answer without the body, and with the length that body has
 * (RFC 9110 asks for the same `Content-Length` as the GET's).
 */

// A HEAD's answer: the GET's headers, its length included (RFC 9110: the same as GET's), and
// no body. A file's answer names its length already; a page's body is read for it when it is
// all there already (a page made as text), up to `HEAD_READ_BYTES`. A body still being made
// (an event feed), or one that fails, is let go: its answer then names no length, as its GET's
// would not.
export async function withoutBody(response: Response): Promise<Response> {
  const headers = response.headers;
  if (!headers.has("content-length")) {
    const length = await lengthOf(response.body!, HEAD_READ_BYTES);
    if (length !== null) headers.set("content-length", String(length));
  } else {
    await response.body!.cancel();
  }
  return new Response(null, { status: response.status, headers });
}

const HEAD_READ_BYTES = 1024 * 1024;

// The length of `body` if all of it is there already and it is at most `most` bytes, else
// `null`; read and let go either way. "There already": each read answers before the next turn
// of the event loop, as a body made from text does.
async function lengthOf(body: ReadableStream<Uint8Array>, most: number): Promise<number | null> {
  const reader = body.getReader();
  let length = 0;
  try {
    for (;;) {
      const chunk = await readNow(reader);
      if (chunk === null) break;
      if (chunk.done) return length;
      length += chunk.value.byteLength;
      if (length > most) break;
    }
  } catch {
    // a body that failed: answered without its length
  }
  await reader.cancel().catch(() => {});
  return null;
}

// The next chunk, or `null` when it is not there within this turn of the event loop.
function readNow(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<ReadableStreamReadResult<Uint8Array> | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 0));
  return Promise.race([reader.read(), later]).finally(() => clearTimeout(timer));
}
