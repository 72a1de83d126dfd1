/**
 * The precompiled deploy path: fleet's command-line entries and the program, each bundled by
 * esbuild into one CommonJS file under dist/, so that `npm run pulumi`, `npm run deploy` and the
 * other operator commands start on plain node, without tsx transpiling on every start (tsx also
 * hooks every .js file it loads, which doubles @pulumi/pulumi's load time). The provider bundles
 * are packed here too (providers/ship.ts), so a deploy runs no esbuild and no brotli.
 *
 * build/launch.js decides when to build: dist/manifest.json records every input file's size and
 * mtime, and any change rebuilds before the command runs, so an edited index.ts or config module
 * is never deployed from a stale bundle. `npm ci` builds once (the `prepare` script).
 */
import * as fs from "fs";
import * as path from "path";
import {
  NODE_BUNDLE,
  PROVIDER_SOURCES,
  shippedPayload,
  type ShippedPayload,
  type ShippedProviderName,
} from "../providers/ship";

const PROJECT_DIR = path.resolve(__dirname, "..");
export const DIST_DIR = path.join(PROJECT_DIR, "dist");

/** dist/<name>.js ← source. The names are the ones build/launch.js accepts. */
export const ENTRIES = {
  pulumi: "engine/main.ts",
  deploy: "scripts/deploy.ts",
  rollback: "scripts/rollback.ts",
  status: "scripts/status.ts",
  drift: "scripts/drift.ts",
  restore: "scripts/restore.ts",
  logs: "scripts/logs.ts",
  exec: "scripts/exec.ts",
  reboot: "scripts/reboot.ts",
  dashboard: "scripts/dashboard.ts",
  program: "index.ts",
} as const;

/** Inputs besides the bundles' own sources whose change must rebuild (paths from the project). */
const BUILD_INPUTS = ["build/bundle.ts", "build/launch.js", "build/lazy-typescript.js", "package-lock.json"];

export interface Manifest {
  /** Project-relative path → [size, mtimeMs] when built. */
  readonly inputs: Record<string, [number, number]>;
  readonly builtAt: string;
}

/** Builds every entry into dist/ and writes the manifest last (a half-written dist reads as stale). */
export function build(): Manifest {
  const esbuild = require("esbuild") as typeof import("esbuild");
  const inputs = new Set<string>(BUILD_INPUTS);
  const providers: Partial<Record<ShippedProviderName, ShippedPayload>> = {};
  for (const name of Object.keys(PROVIDER_SOURCES) as ShippedProviderName[]) {
    const payload = shippedPayload(name);
    providers[name] = payload;
    for (const f of payload.inputs) inputs.add(f);
  }
  fs.mkdirSync(DIST_DIR, { recursive: true });
  for (const [name, source] of Object.entries(ENTRIES)) {
    const result = esbuild.buildSync({
      entryPoints: [path.join(PROJECT_DIR, source)],
      absWorkingDir: PROJECT_DIR,
      ...NODE_BUNDLE,
      target: "node20",
      // The program ships prebuilt provider payloads; entries know they run from a bundle.
      define: { FLEET_BUNDLED: JSON.stringify({ providers }) },
    });
    const out = result.outputFiles[0];
    if (!out) throw new Error(`esbuild produced no output for ${source}`);
    for (const f of Object.keys(result.metafile.inputs)) if (!f.startsWith("<")) inputs.add(f);
    const file = path.join(DIST_DIR, `${name}.js`);
    fs.writeFileSync(`${file}.tmp-${process.pid}`, out.text);
    fs.renameSync(`${file}.tmp-${process.pid}`, file);
  }
  const manifest: Manifest = {
    inputs: Object.fromEntries(
      [...inputs].sort().map((f) => {
        const st = fs.statSync(path.join(PROJECT_DIR, f));
        return [f, [st.size, st.mtimeMs]];
      }),
    ),
    builtAt: new Date().toISOString(),
  };
  const file = path.join(DIST_DIR, "manifest.json");
  fs.writeFileSync(`${file}.tmp-${process.pid}`, JSON.stringify(manifest, null, 1) + "\n");
  fs.renameSync(`${file}.tmp-${process.pid}`, file);
  return manifest;
}
