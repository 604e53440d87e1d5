/** Metrics in the Prometheus text format: the registry, batched frames, Workers' labels. */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { Histogram, MetricsRegistry, serveApp } from "../../mod.ts";
import { RouteMeter } from "../../mod.ts";
import { utf8Length } from "../../server/server_metrics.ts";
import { FrameBatch } from "../../server/_frame_batch.ts";
import { parse, scrape, testApp } from "./_metrics_support.ts";

Deno.test("the registry renders HELP, TYPE and samples, histograms cumulatively", () => {
  const registry = new MetricsRegistry();
  const frames = registry.counter("t_frames_total", "Frames.\nSecond line", ["route"]);
  frames.labels('/ws/"odd"\\path/').value += 3;
  registry.gauge("t_open", "Open.").labels().value = 2;
  const latency = new Histogram([0.1, 1]);
  latency.observe(0.05);
  latency.observe(0.5);
  latency.observe(7);
  registry.histogram("t_write_seconds", "Writes.").attach(latency);
  const text = registry.render();
  assertEquals(
    text,
    [
      "# HELP t_frames_total Frames.\\nSecond line",
      "# TYPE t_frames_total counter",
      't_frames_total{route="/ws/\\"odd\\"\\\\path/"} 3',
      "# HELP t_open Open.",
      "# TYPE t_open gauge",
      "t_open 2",
      "# HELP t_write_seconds Writes.",
      "# TYPE t_write_seconds histogram",
      't_write_seconds_bucket{le="0.1"} 1',
      't_write_seconds_bucket{le="1"} 2',
      't_write_seconds_bucket{le="+Inf"} 3',
      "t_write_seconds_sum 7.55",
      "t_write_seconds_count 3",
      "",
    ].join("\n"),
  );
  parse(text);
});

Deno.test("the registry refuses bad names and unbounded label values", () => {
  const registry = new MetricsRegistry();
  assertThrows(() => registry.counter("t_frames", "No _total."), TypeError, "_total");
  assertThrows(() => registry.gauge("t-bad", "Dash."), TypeError, "Invalid metric name");
  const gauge = registry.gauge("t_by_path", "Per path.", ["path"]);
  assertThrows(() => gauge.labels("a", "b"), TypeError, "takes 1 label value");
  assertThrows(
    () => {
      for (let i = 0; i < 5000; i++) gauge.labels(`/room/${i}/`);
    },
    RangeError,
    "small fixed set",
  );
  // A family made with a larger bound takes that many.
  const wide = registry.counter("t_wide_total", "Wide.", ["n"], { maxSeries: 1500 });
  for (let i = 0; i < 1500; i++) wide.labels(String(i)).value++;
  assertThrows(() => wide.labels("1500"), RangeError, "1500 series");
});

Deno.test("a batched frame counts once, with the UTF-8 bytes it carried", () => {
  const meter = new RouteMeter("/ws/x/");
  const sent: string[] = [];
  const batch = new FrameBatch(meter);
  batch.socket = { readyState: 1, send: (text: string) => void sent.push(text) } as never;
  const shared = '{"text":"héllo"}'; // one group event's JSON, as every member gets it
  batch.add(shared);
  batch.add('{"n":1}');
  batch.add(shared);
  batch.flush();
  assertEquals(sent.length, 1);
  assertEquals(meter.framesOut, 1);
  assertEquals(meter.bytesOut, new TextEncoder().encode(sent[0]).byteLength);
  batch.add(shared);
  batch.discard(); // the socket closed: nothing sent, nothing counted
  batch.flush();
  assertEquals([meter.framesOut, sent.length], [1, 1]);
  assertEquals(utf8Length("a€😀"), 1 + 3 + 4);
});

Deno.test("every series of a Worker carries its name, so a scrape of another Worker never moves it", () => {
  const registry = new MetricsRegistry();
  registry.counter("t_frames_total", "Frames.", ["route"]).labels("/ws/a/").value = 3;
  registry.gauge("t_open", "Open.").labels().value = 2;
  const latency = new Histogram([1]);
  latency.observe(0.5);
  registry.histogram("t_write_seconds", "Writes.").attach(latency);
  registry.labelAll("worker", "worker-2");
  const samples = parse(registry.render());
  assertEquals([...samples.keys()], [
    't_frames_total{worker="worker-2",route="/ws/a/"}',
    't_open{worker="worker-2"}',
    't_write_seconds_bucket{worker="worker-2",le="1"}',
    't_write_seconds_bucket{worker="worker-2",le="+Inf"}',
    't_write_seconds_sum{worker="worker-2"}',
    't_write_seconds_count{worker="worker-2"}',
  ]);
});

Deno.test("a server started as a Worker labels its metrics with the Worker's name", async () => {
  await using test = await testApp();
  const server = await serveApp(test.app, { hostname: "127.0.0.1", port: 0, servedBy: "worker-3" });
  try {
    const samples = await scrape(test.app);
    const names = [...samples.keys()];
    assert(names.length > 0);
    assert(names.every((name) => name.includes('{worker="worker-3"')), names.join("\n"));
  } finally {
    await server.shutdown();
  }
});
