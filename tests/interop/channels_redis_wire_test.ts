/**
 * The layer's message bytes against channels_redis' own `serialize` and `deserialize`
 * (`RedisChannelLayer` from Debian's python3): the same event makes the same msgpack, and each
 * side reads the other's. Skipped with a reason when channels_redis is missing; a failure under
 * `CI=true`.
 */
import { assertEquals } from "@std/assert";
import {
  deserializeMessage,
  RANDOM_PREFIX_BYTES,
  serializeMessage,
} from "../../layers/_channels_redis_wire.ts";
import { djangoUnavailable } from "./_django.ts";
import { PYTHON } from "../_support/python.ts";

const missing = await djangoUnavailable();
if (missing !== null) console.log(`Skipping the channels_redis wire tests: ${missing}`);

// Serialises argv[1] (JSON) with channels_redis, and deserialises argv[2] (hex) back to JSON.
const PYTHON_SIDE = `
import json, sys
from channels_redis.core import RedisChannelLayer
layer = RedisChannelLayer()
print(layer.serialize(json.loads(sys.argv[1])).hex())
print(json.dumps(layer.deserialize(bytes.fromhex(sys.argv[2]))))
`;

const EVENT = {
  type: "chat.message",
  message: {
    text: "héllo 東京 😀",
    small: 5,
    negative: -40,
    wide: 1712345678901,
    wideNegative: -3000000000,
    float: 1.5,
    list: [1, "two", null, true, false],
    long: "x".repeat(300),
    many: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i * 1000])),
  },
};

function encodeHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name: "a message body is byte for byte what channels_redis' serialize writes, both ways",
  ignore: missing !== null,
  fn: async () => {
    const channels = ["specific.abc!1", "specific.abc!2"];
    const ours = serializeMessage(EVENT, channels);
    const { success, stdout, stderr } = await new Deno.Command(PYTHON, {
      args: [
        "-c",
        PYTHON_SIDE,
        JSON.stringify({ ...EVENT, __asgi_channel__: channels }),
        encodeHex(ours),
      ],
    }).output();
    assertEquals(success, true, new TextDecoder().decode(stderr));
    const [theirsHex, theirRead] = new TextDecoder().decode(stdout).trim().split("\n");
    assertEquals(theirsHex.length / 2, ours.length, "12 random bytes, then the same body");
    assertEquals(
      theirsHex.slice(RANDOM_PREFIX_BYTES * 2),
      encodeHex(ours.subarray(RANDOM_PREFIX_BYTES)),
    );
    assertEquals(JSON.parse(theirRead), { ...EVENT, __asgi_channel__: channels });
    const theirs = Uint8Array.from(theirsHex.match(/../g)!, (byte) => parseInt(byte, 16));
    assertEquals(deserializeMessage(theirs), { event: EVENT, channels, groupSend: true });
    // A send to one channel names it alone: no group send (its event is that consumer's only).
    const single = serializeMessage(EVENT, "specific.abc!1");
    assertEquals(deserializeMessage(single), {
      event: EVENT,
      channels: ["specific.abc!1"],
      groupSend: false,
    });
  },
});

/** The bytes `layer` (Python, a `RedisChannelLayer(...)`) makes of `message` (a Python dict). */
async function serializedByChannelsRedis(layer: string, message: string): Promise<Uint8Array> {
  const pack = `from channels_redis.core import RedisChannelLayer
print(${layer}.serialize(${message}).hex())`;
  const { success, stdout, stderr } = await new Deno.Command(PYTHON, { args: ["-c", pack] })
    .output();
  assertEquals(success, true, new TextDecoder().decode(stderr));
  const hex = new TextDecoder().decode(stdout).trim();
  return Uint8Array.from(hex.match(/../g)!, (byte) => parseInt(byte, 16));
}

Deno.test({
  name:
    "a Django event this layer cannot read is ignored with the decoder's reason, not a wrong one",
  ignore: missing !== null,
  fn: async () => {
    // Python packs a dict keyed by bytes as it is; JSON, and so a consumer here, has no such map.
    const read = deserializeMessage(
      await serializedByChannelsRedis(
        "RedisChannelLayer()",
        '{"type": "k.bytes", "m": {b"k": "v"}, "__asgi_channel__": ["specific.abc!1"]}',
      ),
    );
    assertEquals(
      "problem" in read && read.problem.startsWith("msgpack this layer cannot read"),
      true,
    );
    assertEquals(JSON.stringify(read).includes("keys must be a number or a string"), true);
  },
});

Deno.test({
  name: "a Django event encrypted with symmetric_encryption_keys is ignored as encrypted",
  ignore: missing !== null,
  fn: async () => {
    const read = deserializeMessage(
      await serializedByChannelsRedis(
        'RedisChannelLayer(symmetric_encryption_keys=["a Django secret"])',
        '{"type": "chat.message", "__asgi_channel__": ["specific.abc!1"]}',
      ),
    );
    assertEquals(
      "problem" in read && read.problem.startsWith("encrypted by channels_redis' symmetric"),
      true,
      JSON.stringify(read),
    );
  },
});
