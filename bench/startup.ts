/**
 * The program's start-up, as `pulumi up` pays it before any remote work: a fresh Node process
 * loads index.ts through the loader Pulumi.yaml names (tsx: esbuild transpile, no type-check),
 * builds every component and registers every resource (under mocks). Prints the median of runs,
 * and what a type-checking start would add (tsc --noEmit over the project).
 */
import { spawnSync } from "child_process";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function measureStartup(runs: number): { resources: number; medianMs: number; typecheckMs: number } {
  const times: number[] = [];
  let resources = 0;
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ["--require", "tsx/cjs", path.join(__dirname, "startup-child.ts")], {
      cwd: ROOT,
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`start-up run failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { resources: number; ms: number };
    resources = out.resources;
    times.push(out.ms);
  }
  const t0 = Date.now();
  spawnSync(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", ROOT], {
    cwd: ROOT,
  });
  return { resources, medianMs: median(times), typecheckMs: Date.now() - t0 };
}

if (require.main === module) {
  const { resources, medianMs, typecheckMs } = measureStartup(Number(process.env["BENCH_RUNS"] ?? 5));
  console.log(
    `\nprogram start-up (Pulumi.yaml loader: tsx), ${resources} resources registered under mocks: ${medianMs} ms (median)`,
  );
  console.log(
    `a type-checking start would add about ${typecheckMs} ms (tsc --noEmit); type-checks run in CI (npm run lint)`,
  );
}
