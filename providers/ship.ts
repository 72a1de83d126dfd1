import type * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import * as path from "path";
import * as zlib from "zlib";
import {
  CODE_LOADER_KEY,
  CODE_LOADER_MARK,
  CODE_METHODS,
  CODE_PROVIDER_PREFIX,
  codeConfigKeys,
} from "../model/shipped-code";

/**
 * What fleet's dynamic providers ship in Pulumi state (docs/state.md).
 *
 * Pulumi stores a dynamic provider by value, in every resource's `__provider`, inputs and
 * outputs: for fleet that was ~100 KB per resource, and the self-managed backends rewrite the
 * whole state at every step, so an update grew with the square of the fleet.
 *
 * Instead each provider module is bundled with esbuild (minified, npm packages left as
 * `require`s resolved from the project, as the SDK's serializer does) and brotli-compressed,
 * and the bundles ride **once per stack**, in the configuration of one explicit `pulumi-nodejs`
 * provider resource named after their hash (components/shipped-resource.ts). A resource's
 * `__provider` is a small loader, the same text for every fleet version, that takes its bundle
 * from that configuration and runs it only if its sha256 matches. Pulumi's dynamic-provider
 * host hands the provider's configuration to the loader's `configure`.
 *
 * A resource's state names its provider resource, so a resource is refreshed, deleted or
 * destroyed with the code it was last written with, even after fleet is upgraded: the older
 * provider resource stays in state for as long as a resource refers to it.
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

/**
 * A provider module bundled to one CommonJS text, deterministic for the same sources: its
 * export as `provider`, wrapped by providers/code-move.ts (older state moves over on update).
 */
export function bundleProviderSource(name: ShippedProviderName, root = PROJECT_ROOT): string {
  return bundleProvider(name, root).code;
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
function bundleProvider(name: ShippedProviderName, root = PROJECT_ROOT): { code: string; inputs: string[] } {
  // Required here: esbuild is only needed by the deploying program, never inside a provider.
  const esbuild = require("esbuild") as typeof import("esbuild");
  const source = PROVIDER_SOURCES[name];
  const entry = [
    `import { ${source.exportName} as provider } from "./${source.file.replace(/\.ts$/, "")}";`,
    `import { withCodeMove } from "./providers/code-move";`,
    `export const fleetProvider = withCodeMove(provider);`,
  ].join("\n");
  const sourcefile = `fleet-code-${name}.ts`;
  const result = esbuild.buildSync({
    stdin: { contents: entry, resolveDir: root, sourcefile, loader: "ts" },
    absWorkingDir: root,
    ...NODE_BUNDLE,
    target: "node18",
    minify: true,
    // Function names survive minification: stack traces from the provider host stay readable.
    keepNames: true,
    legalComments: "none",
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error(`esbuild produced no output for ${source.file}`);
  return { code: out.text, inputs: Object.keys(result.metafile.inputs).filter((f) => f !== sourcefile) };
}

/** brotli + base64: how a bundle travels in the provider's configuration. */
export function packBundle(code: string): string {
  return zlib
    .brotliCompressSync(Buffer.from(code, "utf8"), {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 9, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: code.length },
    })
    .toString("base64");
}

/** The sha256 (hex) of a packed bundle's text: what the loader checks before running it. */
export function bundleSha256(packed: string): string {
  return createHash("sha256").update(packed).digest("hex");
}

/**
 * The loader, in two parts. A resource's `__provider` holds only the first, LOADER_BOOT: the
 * same few hundred bytes for every fleet version and every bundle but its name, so that it is
 * never a diff and costs little in each resource. Pulumi's dynamic-provider host calls its
 * `configure` with the provider resource's configuration before any other method; it runs the
 * second part, LOADER_BODY, which rides in that configuration (`fleetLoader`) beside the bundles.
 * Until configure succeeds every method rejects, so a missing or tampered piece runs nothing on a
 * host (the host would otherwise skip a missing `delete` and forget the resource).
 *
 * LOADER_BODY finds the bundle, checks its sha256 against the one written beside it, unpacks it
 * once per process (cached on globalThis by hash; all bundles share transport/ssh.ts's pool, also
 * kept on globalThis) and takes the bundle's methods. npm packages (ssh2) resolve from the project
 * folder, where Pulumi runs the provider host. With FLEET_TRACE (observe/trace.ts) each RPC
 * appends its span. Both are written here as text, not by Pulumi's closure serializer (~250 ms at
 * each program start).
 */
const LOADER_BOOT = `
exports.handler=()=>{const b=BUNDLE,l={},f=e=>{for(const m of METHODS)l[m]=()=>Promise.reject(e)};
f(Error("fleet: no code for this "+b+" resource in its provider; nothing ran (docs/state.md)"));
l.configure=async r=>{try{const c=r.config.rawConfig;Function("loader","config","bundle","fail","require",c.fleetLoader)(l,c,b,f,require)}catch(e){f(e)}};
return l}`;

const LOADER_BODY = `
const METHODS = ${JSON.stringify(CODE_METHODS)};
const packed = config[bundle], sha256 = config[bundle + "Sha256"];
const what = "fleet: the code of this " + bundle + " resource";
const todo = " Nothing ran on any host. The state names the code that manages each resource" +
  " (pulumi:providers:pulumi-nodejs fleet-code-…, docs/state.md): restore that stack state from" +
  " the backend's history or a backup (pulumi stack import), then run the command again.";
if (typeof packed !== "string" || typeof sha256 !== "string") throw new Error(what + " is missing from its provider's configuration (no '" + bundle + "' or '" + bundle + "Sha256')." + todo);
const actual = require("crypto").createHash("sha256").update(packed).digest("hex");
if (actual !== sha256) throw new Error(what + " does not match its sha256: the state says " + sha256.slice(0, 16) + "…, the code is " + actual.slice(0, 16) + "…; the state was changed outside Pulumi." + todo);
const cache = (globalThis.__fleetCode ??= {});
let provider = cache[actual];
if (!provider) {
  const path = require("path");
  const code = require("zlib").brotliDecompressSync(Buffer.from(packed, "base64")).toString("utf8");
  const filename = path.join(process.cwd(), "fleet-code-" + bundle + "-" + actual.slice(0, 16) + ".js");
  const mod = { exports: {} };
  new Function("exports", "require", "module", "__filename", "__dirname", code)(
    mod.exports, require("module").createRequire(filename), mod, filename, path.dirname(filename));
  provider = mod.exports.fleetProvider;
  if (!provider) throw new Error(what + " (sha256 " + actual.slice(0, 16) + "…) exports no provider." + todo);
  cache[actual] = provider;
}
for (const method of METHODS) {
  if (typeof provider[method] !== "function") { delete loader[method]; continue; }
  loader[method] = (...args) => {
    const traceFile = process.env.FLEET_TRACE;
    const start = Date.now();
    const result = provider[method].apply(provider, args);
    if (!traceFile) return result;
    const line = { ev: "rpc", method, pid: process.pid, origin: Math.round(performance.timeOrigin), start };
    return Promise.resolve(result).finally(() =>
      require("fs").appendFileSync(traceFile, JSON.stringify({ ...line, t: Date.now() }) + "\\n"));
  };
}`;

/** The `__provider` module text of a bundle: the same for every fleet version. */
export function loaderModuleText(bundle: string): string {
  const boot = LOADER_BOOT.trim()
    .replace("BUNDLE", JSON.stringify(bundle))
    .replace("METHODS", JSON.stringify(CODE_METHODS))
    .replace(/\n/g, "");
  return `${CODE_LOADER_MARK}\n${boot}\n`;
}

/** The loader's second part, as the provider's configuration carries it (`fleetLoader`). */
export function loaderBodyText(): string {
  return LOADER_BODY.trim();
}

/** The provider object a loader text gives, configured with `config` (what the host does). */
function evaluateLoader(text: string, config: Record<string, string>): pulumi.dynamic.ResourceProvider {
  const mod = { exports: {} as { handler?: () => pulumi.dynamic.ResourceProvider } };
  new Function("exports", "require", "module", text)(mod.exports, require, mod);
  const provider = mod.exports.handler!();
  // Synchronous inside (no await before its end): the methods are there when this returns.
  void provider.configure!({ config: { rawConfig: config } as unknown as pulumi.dynamic.Config });
  return provider;
}

/**
 * A loader object for a bundle under `config` (tests: missing, tampered or foreign code); the
 * loader's body is added when `config` has none (`fleetLoader`).
 */
export function loaderFor(bundle: string, config: Record<string, string>): pulumi.dynamic.ResourceProvider {
  return evaluateLoader(loaderModuleText(bundle), { [CODE_LOADER_KEY]: loaderBodyText(), ...config });
}

/** What a provider ships: its packed bundle, that text's sha256, and the files it was built from. */
export interface ShippedPayload {
  readonly packed: string;
  readonly sha256: string;
  /** Project-relative source files of the bundle (build/bundle.ts watches them). */
  readonly inputs: string[];
}

/** Set by build/bundle.ts in the bundles it builds: the providers, packed at build time. */
declare const FLEET_BUNDLED: { providers: Partial<Record<ShippedProviderName, ShippedPayload>> } | undefined;

/** Bundles and packs a provider now (the build does this once; tests and tsx runs each time). */
export function shippedPayload(name: ShippedProviderName): ShippedPayload {
  const { code, inputs } = bundleProvider(name);
  const packed = packBundle(code);
  return { packed, sha256: bundleSha256(packed), inputs };
}

const payloads: Partial<Record<ShippedProviderName, ShippedPayload>> = {};

/** The payload: prebuilt in a bundle, else built once per process. */
function payloadOf(name: ShippedProviderName): ShippedPayload {
  const prebuilt = typeof FLEET_BUNDLED === "undefined" ? undefined : FLEET_BUNDLED.providers[name];
  return (payloads[name] ??= prebuilt ?? shippedPayload(name));
}

/** The `__provider` text that fleet's dynamic resources register (components/shipped-resource.ts). */
export function shippedProviderText(name: ShippedProviderName): string {
  return loaderModuleText(name);
}

/**
 * The configuration of the provider resource that carries the code: per bundle, its packed text
 * and that text's sha256. Every bundle, so one provider resource serves every fleet resource.
 */
export function codeProviderConfig(): Record<string, string> {
  const config: Record<string, string> = { [CODE_LOADER_KEY]: loaderBodyText() };
  for (const name of Object.keys(PROVIDER_SOURCES) as ShippedProviderName[]) {
    const payload = payloadOf(name);
    const keys = codeConfigKeys(name);
    config[keys.packed] = payload.packed;
    config[keys.sha256] = payload.sha256;
  }
  return config;
}

/** The provider resource's name: fleet-code-<hash of every bundle's and the loader's sha256>, one per fleet version. */
export function codeProviderName(config: Record<string, string> = codeProviderConfig()): string {
  const hashes = Object.keys(PROVIDER_SOURCES)
    .sort()
    .map((name) => `${name}=${config[codeConfigKeys(name).sha256] ?? ""}`)
    .concat(`${CODE_LOADER_KEY}=${bundleSha256(config[CODE_LOADER_KEY] ?? "")}`)
    .join("\n");
  return `${CODE_PROVIDER_PREFIX}${createHash("sha256").update(hashes).digest("hex").slice(0, 12)}`;
}

/** The code a stored configuration carries for a bundle, unpacked (tests, inspecting state). */
export function unpackShipped(config: Record<string, unknown>, name: ShippedProviderName): string | undefined {
  const packed = config[codeConfigKeys(name).packed];
  return typeof packed === "string"
    ? zlib.brotliDecompressSync(Buffer.from(packed, "base64")).toString("utf8")
    : undefined;
}

const shipped: Partial<Record<ShippedProviderName, pulumi.dynamic.ResourceProvider>> = {};

/** Where a shipped provider object keeps the `__provider` text it was evaluated from. */
const PROVIDER_TEXT = Symbol.for("fleet.shippedProviderText");

/**
 * The provider object that the program's `__provider` text gives the provider host once it is
 * configured with codeProviderConfig(), for tests that drive a provider in-process or through
 * the host (`shippedProviderTextOf` gives its text).
 */
export function shippedProvider(name: ShippedProviderName): pulumi.dynamic.ResourceProvider {
  const known = shipped[name];
  if (known) return known;
  const text = shippedProviderText(name);
  const provider = evaluateLoader(text, codeProviderConfig());
  delete provider.configure;
  Object.defineProperty(provider, PROVIDER_TEXT, { value: text, enumerable: false });
  return (shipped[name] = provider);
}

/** The `__provider` text of a shipped provider object; undefined for any other object. */
export function shippedProviderTextOf(provider: object): string | undefined {
  return (provider as { [PROVIDER_TEXT]?: string })[PROVIDER_TEXT];
}
