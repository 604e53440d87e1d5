/**
 * The frames a WebSocket message carries, as the client's sockets read them: one JSON object
 * per message (`live_socket.js`'s default), or newline-delimited JSON objects when a stream
 * asked for batches (`channels_client.js`, `?batch=1`). Anything else is no frame at all.
 */

/**
 * The frame one WebSocket message carries when it is a JSON object; none otherwise.
 * @param {unknown} data
 * @returns {Record<string, unknown>[]}
 */
export function jsonObjects(data) {
  if (typeof data !== "string") return [];
  let value;
  try {
    value = JSON.parse(data);
  } catch {
    return [];
  }
  return value !== null && typeof value === "object" && !Array.isArray(value) ? [value] : [];
}

/**
 * The frames of one batched WebSocket message: newline-delimited JSON objects, in order.
 * Lines that are not JSON objects are skipped.
 * @param {unknown} data
 * @returns {Record<string, unknown>[]}
 */
export function ndjsonFrames(data) {
  if (typeof data !== "string") return [];
  return data.split("\n").flatMap((line) => line.trim() === "" ? [] : jsonObjects(line));
}
