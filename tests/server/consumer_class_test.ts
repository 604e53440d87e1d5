/**
 * Hooks made by a class: its event handlers are shared by every socket, and every hook runs with
 * the hooks object as `this`.
 */
import { assertEquals } from "@std/assert";
import { Communicator, createTestServices } from "../../testing.ts";
import type { Connection, ConsumerHooks, LayerEvent } from "../../mod.ts";

class Greeter implements ConsumerHooks {
  static readonly #events = {
    greet(this: Greeter, event: LayerEvent) {
      this.#conn.sendJson({ to: this.#name, text: event.text });
    },
  };
  readonly #conn: Connection;
  readonly #name: string;

  constructor(conn: Connection) {
    this.#conn = conn;
    this.#name = conn.scope.query.get("name") ?? "?";
  }

  get events() {
    return Greeter.#events;
  }

  connect() {
    return this.#conn.groupAdd("greetings");
  }
}

Deno.test("a class's shared event handlers run with each socket's hooks as `this`", async () => {
  await using services = await createTestServices();
  const consumer = (conn: Connection) => new Greeter(conn);
  const ada = new Communicator({ consumer, services }, "/ws/g/?name=ada");
  const bob = new Communicator({ consumer, services }, "/ws/g/?name=bob");
  await ada.connect();
  await bob.connect();
  await services.layer.groupSend("greetings", { type: "greet", text: "hi" });
  assertEquals(await ada.receiveJson(), { to: "ada", text: "hi" });
  assertEquals(await bob.receiveJson(), { to: "bob", text: "hi" });
  await ada.disconnect();
  await bob.disconnect();
});

class ByteCounter implements ConsumerHooks {
  readonly #conn: Connection;
  #received = 0;

  constructor(conn: Connection) {
    this.#conn = conn;
  }

  receiveBytes(data: Uint8Array) {
    this.#received += data.length;
    this.#conn.sendJson({ received: this.#received });
  }

  receive(text: string) {
    this.#received += text.length;
    this.#conn.sendJson({ received: this.#received });
  }
}

Deno.test("a class's receive hooks run with its instance as `this`, binary frames too", async () => {
  await using services = await createTestServices();
  const comm = new Communicator({ consumer: (conn) => new ByteCounter(conn), services }, "/ws/n/");
  await comm.connect();
  comm.send(new Uint8Array([1, 2, 3]));
  assertEquals(await comm.receiveJson(), { received: 3 });
  comm.send("ab");
  assertEquals(await comm.receiveJson(), { received: 5 });
  await comm.disconnect();
});
