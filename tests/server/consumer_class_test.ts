/** Hooks made by a class: its event handlers are shared by every socket, and run with it as `this`. */
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
