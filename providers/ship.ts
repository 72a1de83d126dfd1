import type * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import * as path from "path";
import * as zlib from "zlib";

/**
 * What fleet's dynamic providers ship in Pulumi state.
 *
 * Pulumi stores a dynamic provider by value: `serializeFunction` walks every function the
 * provider reaches and writes each with its captured environment. For the Service provider that
 * was ~215 KB of closure text, which cost ~1 s at every program start and rode on every RPC
 * (Check, Diff and Update each carry it two or three times; the engine and the provider host
 * encode and decode it each time, and every resource's state stores it twice).
 *
 * Instead each provider module is bundled with esbuild (minified, npm packages left as
 * `require`s resolved from the project, as the SDK's serializer does), brotli-compressed, and
 * shipped inside a small loader: 5–10× smaller, still by value, so a resource is deleted or
 * refreshed with the code it was deployed with, even after fleet is upgraded.
 */

/** The provider modules and the export that is the provider. Paths are from the project root. */
export const PROVIDER_SOURCES = {
  service: { file: "providers/service/provider.ts", exportName: "serviceProvider" },
  backup: { file: "providers/backup/provider.ts", exportName: "backupProvider" },
  hostBootstrap: { file: "providers/host/provider.ts", exportName: "hostBootstrapProvider" },
  hostKey: { file: "providers/host/host-key.ts", exportName: "hostKeyProvider" },
  dockerImage: { file: "providers/image/docker-provider.ts", exportName: "dockerImageProvider" },
  hcloudImage: { file: "providers/image/hcloud-provider.ts", exportName: "hcloudImageProvider" },
} as const;

export type ShippedProviderName = keyof typeof PROVIDER_SOURCES;

const PROJECT_ROOT = path.resolve(__dirname, "..");
const METHODS = ["check", "diff", "create", "read", "update", "delete"] as const;

/** A provider module bundled to one CommonJS text: deterministic for the same sources. */
export function bundleProviderSource(file: string, root = PROJECT_ROOT): string {
  // Required here: esbuild is only needed by the deploying program, never inside a provider.

  const esbuild = require("esbuild") as typeof import("esbuild");
  const result = esbuild.buildSync({
    entryPoints: [path.join(root, file)],
    absWorkingDir: root,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node18",
    minify: true,
    // Function names survive minification: stack traces from the provider host stay readable.
    keepNames: true,
    packages: "external",
    legalComments: "none",
    write: false,
    logLevel: "silent",
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error(`esbuild produced no output for ${file}`);
  return out.text;
}

/** brotli + base64: how the bundle travels in state. */
export function packBundle(code: string): string {
  return zlib
    .brotliCompressSync(Buffer.from(code, "utf8"), {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 9, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: code.length },
    })
    .toString("base64");
}

/**
 * The provider code inside a serialized `__provider` text (for tests and for inspecting state):
 * undefined when the text is not a shipped loader.
 */
export function unpackShipped(providerText: string): string | undefined {
  const packed = /packed: "([A-Za-z0-9+/=]+)"/.exec(providerText)?.[1];
  return packed === undefined ? undefined : zlib.brotliDecompressSync(Buffer.from(packed, "base64")).toString("utf8");
}

/**
 * The loader object that Pulumi serializes. It captures only strings (the packed bundle, its
 * hash, the export name) and plain functions; everything else is required when first called.
 * The unpacked provider is cached on globalThis per bundle hash, so one provider-host process
 * unpacks each bundle once, and all bundles share transport/ssh.ts's connection pool (also
 * kept on globalThis).
 */
export function loaderFor(
  packed: string,
  exportName: string,
  methods: readonly (typeof METHODS)[number][],
): pulumi.dynamic.ResourceProvider {
  const bundleHash = createHash("sha256").update(packed).digest("hex").slice(0, 16);
  const load = (): Record<string, (...args: unknown[]) => unknown> => {
    const cache = ((globalThis as Record<string, unknown>)["__fleetProviders"] ??= {}) as Record<
      string,
      Record<string, (...args: unknown[]) => unknown>
    >;
    const hit = cache[bundleHash];
    if (hit) return hit;

    const zlibAtRuntime = require("zlib") as typeof import("zlib");
    const moduleAtRuntime = require("module") as typeof import("module");
    const pathAtRuntime = require("path") as typeof import("path");

    const code = zlibAtRuntime.brotliDecompressSync(Buffer.from(packed, "base64")).toString("utf8");
    // npm packages (ssh2) resolve from the project folder, where Pulumi runs the provider host.
    const filename = pathAtRuntime.join(process.cwd(), `fleet-provider-${exportName}-${bundleHash}.js`);
    const mod = { exports: {} as Record<string, unknown> };

    new Function("exports", "require", "module", "__filename", "__dirname", code)(
      mod.exports,
      moduleAtRuntime.createRequire(filename),
      mod,
      filename,
      pathAtRuntime.dirname(filename),
    );
    const provider = mod.exports[exportName] as Record<string, (...args: unknown[]) => unknown> | undefined;
    if (!provider) throw new Error(`fleet provider bundle ${bundleHash} has no export ${exportName}`);
    cache[bundleHash] = provider;
    return provider;
  };
  const loader: Record<string, (...args: unknown[]) => unknown> = {};
  for (const method of methods) {
    loader[method] = (...args: unknown[]) => {
      // FLEET_TRACE (observe/trace.ts): each RPC's span, for bench:compare. Written inline: this
      // function travels in state, so it captures nothing but strings.
      const traceFile = process.env["FLEET_TRACE"];
      const start = Date.now();
      const provider = load();
      const result = provider[method]!.apply(provider, args);
      if (!traceFile) return result;
      const done = () =>
        require("fs").appendFileSync(
          traceFile,
          JSON.stringify({
            ev: "rpc",
            method,
            pid: process.pid,
            origin: Math.round(performance.timeOrigin),
            start,
            t: Date.now(),
          }) + "\n",
        );
      return Promise.resolve(result).finally(done);
    };
  }
  return loader as unknown as pulumi.dynamic.ResourceProvider;
}

const shipped: Partial<Record<ShippedProviderName, pulumi.dynamic.ResourceProvider>> = {};

/**
 * The provider object to give `pulumi.dynamic.Resource`. One object per provider per process,
 * so the SDK serializes each once (it caches by object).
 */
export function shippedProvider(name: ShippedProviderName): pulumi.dynamic.ResourceProvider {
  const cached = shipped[name];
  if (cached) return cached;
  const source = PROVIDER_SOURCES[name];
  // The in-process module says which methods exist: the host treats a missing one specially.

  const inProcess = (require(path.join(PROJECT_ROOT, source.file)) as Record<string, Record<string, unknown>>)[
    source.exportName
  ];
  if (!inProcess) throw new Error(`${source.file} does not export ${source.exportName}`);
  const methods = METHODS.filter((m) => typeof inProcess[m] === "function");
  const provider = loaderFor(packBundle(bundleProviderSource(source.file)), source.exportName, methods);
  shipped[name] = provider;
  return provider;
}
