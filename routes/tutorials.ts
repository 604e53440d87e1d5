/**
 * The small apps of other tutorials this project replaces, each on the path its tutorial uses
 * so the tutorial's own client code runs unchanged.
 */
import { type AppRoute, socket } from "../mod.ts";
import { echoConsumer } from "../consumers/echo.ts";

/** The tutorials' WebSocket routes. */
export function tutorialRoutes(): AppRoute[] {
  return [
    socket("/ws/echo/", echoConsumer),
  ];
}
