import { layerConformance } from "./conformance.ts";
import { InMemoryLayer } from "../../layers/in_memory.ts";
import { log } from "../../telemetry/log.ts";

log.setLevel("error"); // the overflow case logs a warning by design
layerConformance("in-memory layer", () => Promise.resolve(new InMemoryLayer()));
