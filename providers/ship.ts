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
  return bundleProvider(file, root).code;
}

/**
 * How fleet bundles for node (the providers here, the commands and the program in build/bundle.ts):
 * one CommonJS text, npm packages left as requires, in memory, with the list of its inputs.
 */
export const NODE_BUNDLE = {
  bundle: true,
  platform: "node",
  format: "cjs",
  packages: "external",
  write: false,
  logLevel: "silent",
  metafile: true,
} as const;

/** The bundle and the project-relative files it was built from. */
function bundleProvider(file: string, root = PROJECT_ROOT): { code: string; inputs: string[] } {
  // Required here: esbuild is only needed by the deploying program, never inside a provider.

  const esbuild = require("esbuild") as typeof import("esbuild");
  const result = esbuild.buildSync({
    entryPoints: [path.join(root, file)],
    absWorkingDir: root,
    ...NODE_BUNDLE,
    target: "node18",
    minify: true,
    // Function names survive minification: stack traces from the provider host stay readable.
    keepNames: true,
    legalComments: "none",
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error(`esbuild produced no output for ${file}`);
  return { code: out.text, inputs: Object.keys(result.metafile.inputs) };
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
  const packed = /fleetLoader\("([A-Za-z0-9+/=]+)"/.exec(providerText)?.[1];
  return packed === undefined ? undefined : zlib.brotliDecompressSync(Buffer.from(packed, "base64")).toString("utf8");
}

/**
 * The loader that a resource stores as `__provider`: a module whose `handler()` returns the
 * provider object, as Pulumi's dynamic-provider host expects. It is written here as text, not
 * produced by Pulumi's closure serializer: that costs ~250 ms at each program start (it loads
 * TypeScript to parse functions) and its output would depend on how fleet itself was compiled.
 * The text holds only strings (the packed bundle, its hash, the export name, the methods).
 *
 * The unpacked provider is cached on globalThis per bundle hash, so one provider-host process
 * unpacks each bundle once, and all bundles share transport/ssh.ts's connection pool (also kept
 * on globalThis). npm packages (ssh2) resolve from the project folder, where Pulumi runs the
 * provider host. With FLEET_TRACE (observe/trace.ts) each RPC appends its span.
 */
const LOADER_JS = `
function fleetLoader(packed, bundleHash, exportName, methods) {
  const load = () => {
    const cache = (globalThis.__fleetProviders ??= {});
    if (cache[bundleHash]) return cache[bundleHash];
    const path = require("path");
    const code = require("zlib").brotliDecompressSync(Buffer.from(packed, "base64")).toString("utf8");
    const filename = path.join(process.cwd(), "fleet-provider-" + exportName + "-" + bundleHash + ".js");
    const mod = { exports: {} };
    new Function("exports", "require", "module", "__filename", "__dirname", code)(
      mod.exports, require("module").createRequire(filename), mod, filename, path.dirname(filename));
    const provider = mod.exports[exportName];
    if (!provider) throw new Error("fleet provider bundle " + bundleHash + " has no export " + exportName);
    return (cache[bundleHash] = provider);
  };
  const loader = {};
  for (const method of methods) {
    loader[method] = (...args) => {
      const traceFile = process.env.FLEET_TRACE;
      const start = Date.now();
      const provider = load();
      const result = provider[method].apply(provider, args);
      if (!traceFile) return result;
      const line = { ev: "rpc", method, pid: process.pid, origin: Math.round(performance.timeOrigin), start };
      return Promise.resolve(result).finally(() =>
        require("fs").appendFileSync(traceFile, JSON.stringify({ ...line, t: Date.now() }) + "\\n"));
    };
  }
  return loader;
}`;

/** The `__provider` module text for a packed bundle. */
export function loaderModuleText(packed: string, exportName: string, methods: readonly string[]): string {
  const bundleHash = createHash("sha256").update(packed).digest("hex").slice(0, 16);
  const args = [packed, bundleHash, exportName, methods].map((a) => JSON.stringify(a)).join(", ");
  return `${LOADER_JS.trim()}\nexports.handler = () => fleetLoader(${args});\n`;
}

/** The provider object a loader text gives (what the provider host gets from `handler()`). */
function evaluateLoader(text: string): pulumi.dynamic.ResourceProvider {
  const mod = { exports: {} as { handler?: () => pulumi.dynamic.ResourceProvider } };
  new Function("exports", "require", "module", text)(mod.exports, require, mod);
  return mod.exports.handler!();
}

/** A loader object for a packed bundle, evaluated from its `__provider` text. */
export function loaderFor(
  packed: string,
  exportName: string,
  methods: readonly (typeof METHODS)[number][],
): pulumi.dynamic.ResourceProvider {
  return evaluateLoader(loaderModuleText(packed, exportName, methods));
}

/** What a provider ships: its packed bundle, export and methods, and the files it was built from. */
export interface ShippedPayload {
  readonly packed: string;
  readonly exportName: string;
  readonly methods: (typeof METHODS)[number][];
  /** Project-relative source files of the bundle (build/bundle.ts watches them). */
  readonly inputs: string[];
}

/** Set by build/bundle.ts in the bundles it builds: the providers, packed at build time. */
declare const FLEET_BUNDLED: { providers: Partial<Record<ShippedProviderName, ShippedPayload>> } | undefined;

/** Bundles and packs a provider now (the build does this once; tests and tsx runs each time). */
export function shippedPayload(name: ShippedProviderName): ShippedPayload {
  const source = PROVIDER_SOURCES[name];
  // The in-process module says which methods exist: the host treats a missing one specially.
  const inProcess = (require(path.join(PROJECT_ROOT, source.file)) as Record<string, Record<string, unknown>>)[
    source.exportName
  ];
  if (!inProcess) throw new Error(`${source.file} does not export ${source.exportName}`);
  const { code, inputs } = bundleProvider(source.file);
  return {
    packed: packBundle(code),
    exportName: source.exportName,
    methods: METHODS.filter((m) => typeof inProcess[m] === "function"),
    inputs,
  };
}

const payloads: Partial<Record<ShippedProviderName, ShippedPayload>> = {};

/** The payload: prebuilt in a bundle, else built once per process. */
function payloadOf(name: ShippedProviderName): ShippedPayload {
  const prebuilt = typeof FLEET_BUNDLED === "undefined" ? undefined : FLEET_BUNDLED.providers[name];
  return (payloads[name] ??= prebuilt ?? shippedPayload(name));
}

/** The `__provider` text that fleet's dynamic resources register (components/shipped-resource.ts). */
export function shippedProviderText(name: ShippedProviderName): string {
  const p = payloadOf(name);
  return loaderModuleText(p.packed, p.exportName, p.methods);
}

const shipped: Partial<Record<ShippedProviderName, pulumi.dynamic.ResourceProvider>> = {};

/** Where a shipped provider object keeps the `__provider` text it was evaluated from. */
const PROVIDER_TEXT = Symbol.for("fleet.shippedProviderText");

/**
 * The provider object that the program's `__provider` text gives the provider host, for tests
 * that drive a provider in-process or through the host (`shippedProviderTextOf` gives its text).
 */
export function shippedProvider(name: ShippedProviderName): pulumi.dynamic.ResourceProvider {
  const known = shipped[name];
  if (known) return known;
  const text = shippedProviderText(name);
  const provider = evaluateLoader(text);
  Object.defineProperty(provider, PROVIDER_TEXT, { value: text, enumerable: false });
  return (shipped[name] = provider);
}

/** The `__provider` text of a shipped provider object; undefined for any other object. */
export function shippedProviderTextOf(provider: object): string | undefined {
  return (provider as { [PROVIDER_TEXT]?: string })[PROVIDER_TEXT];
}
