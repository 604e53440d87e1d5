/**
 * `deno task bench [--quick] [--only fanout,idle] [--rounds N] [--out file]`: runs the
 * scenarios of `scenarios/mod.ts` against the raw baseline and this server (each its own
 * process, started fresh per measurement), with the load in another process, and prints each
 * figure with its ratio to the baseline and the targets with PASS/FAIL. The results are also
 * written as JSON (default `data/bench/latest.json`, which git ignores).
 */
import { dirname } from "@std/path";
import type { BenchOptions, Check, ScenarioResult } from "./_scenario.ts";
import { LoadGenerator } from "./_generator.ts";
import { OURS, RAW } from "./_servers.ts";
import { formatChecks, formatScenario } from "./_report.ts";
import { SCENARIOS } from "./scenarios/mod.ts";

/** Reads the command line; throws on an unknown flag or scenario. */
export function parseOptions(args: string[]): BenchOptions {
  const options: BenchOptions = {
    quick: false,
    only: null,
    rounds: 0,
    out: "data/bench/latest.json",
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const value = (): string => inline ?? args[++i] ?? "";
    if (flag === "--") continue; // `deno task bench -- --quick` may pass it through
    else if (flag === "--quick") options.quick = true;
    else if (flag === "--only") {
      options.only = value().split(",").map((s) => s.trim()).filter(Boolean);
    } else if (flag === "--rounds") options.rounds = Number(value());
    else if (flag === "--out") options.out = value();
    else throw new Error(`Unknown option "${args[i]}"`);
  }
  if (!Number.isInteger(options.rounds) || options.rounds < 0) {
    throw new Error("--rounds must be a whole number");
  }
  options.rounds ||= options.quick ? 1 : 3;
  const unknown = (options.only ?? []).filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `Unknown scenario "${unknown.join(", ")}"; known: ${SCENARIOS.map((s) => s.name).join(", ")}`,
    );
  }
  return options;
}

async function main(options: BenchOptions): Promise<number> {
  const targets = [RAW, OURS];
  const servers = targets.map((target) => target.name);
  const started = performance.now();
  const log = (message: string): void =>
    console.error(
      `[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`,
    );
  console.log(
    `Bench: ${servers.join(" vs ")}${options.quick ? " (quick)" : ""}, ` +
      `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; load from a separate process`,
  );
  for (const target of targets) for (const note of target.notes) console.log(`  ${note}`);
  const results: ScenarioResult[] = [];
  const failures: string[] = [];
  await using generator = LoadGenerator.start();
  for (const scenario of SCENARIOS) {
    if (options.only && !options.only.includes(scenario.name)) continue;
    log(`${scenario.name}: start`);
    try {
      const result = await scenario.run({ options, targets, generator, log });
      results.push(result);
      console.log(formatScenario(result, result.servers ?? servers));
    } catch (error) {
      failures.push(`${scenario.name}: ${(error as Error).message}`);
      console.log(`\n== ${scenario.title} ==\n  FAILED TO RUN: ${(error as Error).message}`);
    }
  }
  const checks: Check[] = results.flatMap((result) => result.checks);
  console.log(formatChecks(checks));
  const seconds = (performance.now() - started) / 1000;
  console.log(`\nTook ${seconds.toFixed(0)} s. Results: ${options.out}`);
  await Deno.mkdir(dirname(options.out), { recursive: true });
  await Deno.writeTextFile(
    options.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        options,
        machine: { cores: navigator.hardwareConcurrency, deno: Deno.version.deno },
        servers: targets,
        results,
        checks,
        failures,
        seconds,
      },
      null,
      2,
    ) + "\n",
  );
  return failures.length > 0 ? 1 : 0;
}

if (import.meta.main) {
  let options: BenchOptions;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  Deno.exit(await main(options));
}
