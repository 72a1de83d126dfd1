/**
 * Reads a Pulumi file ("diy") backend as it lies on disk, to roll back by pinning each service to
 * the release it had in an earlier update. Pure: files in, plain data out; nothing is decrypted.
 *
 * Format facts, verified in pulumi/pulumi:
 * - pkg/backend/diy/store.go (projectReferenceStore): stack file `.pulumi/stacks/<project>/<stack>.json`
 *   (+ `.gz` or `.zst`), history dir `.pulumi/history/<project>/<stack>/`. The legacy store (meta.yaml
 *   version 0) has no project level: `.pulumi/stacks/<stack>.json`, `.pulumi/history/<stack>/`.
 * - pkg/backend/diy/state.go addToHistory: per update, `<stack>-<time.Now().UnixNano()>.history.json`
 *   (a backend.UpdateInfo) and `<same prefix>.checkpoint.json`, a byte copy of the stack file; both
 *   get `.gz`/`.zst` when compression is on. getHistory lists them by file name (older first) and
 *   reads them with encoding.DetectCompression, i.e. by the bytes' magic, not the extension.
 * - pkg/backend/diy/state.go stackPath: of `.json`, `.json.gz`, `.json.zst` the most recently
 *   modified is the stack's file.
 * - pkg/backend/updates.go UpdateInfo: kind, startTime, message, environment (`git.head`, …), config,
 *   version, result, endTime, resourceChanges. pkg/backend/diy/backend.go apply() never sets
 *   `version` (so it is 0 on disk) and sets startTime/endTime from time.Now().Unix() (seconds).
 * - sdk/go/common/apitype/core.go: VersionedCheckpoint `{ version, checkpoint }`; CheckpointV3
 *   `{ stack, config, latest }`; DeploymentV3 `{ manifest, secrets_providers, resources,
 *   pending_operations }`; ResourceV3 `{ urn, custom, delete, id, type, inputs, outputs, parent, … }`.
 * - URNs are `urn:pulumi:<stack>::<project>::<parent types $-joined>$<type>::<name>`, the root Stack's
 *   type left out of the chain (pkg/resource/deploy/step_generator.go generateURN; the Node SDK's
 *   createUrn does the same), and the name is everything after the third `::`.
 * - Secret values in a checkpoint are `{ "4dabf18193072939515e22adb298388d":
 *   "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "…" }`; fleet keeps the fields read here plain.
 */
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { hostOfServiceResource } from "../model/resource-names";

/** The type token of the Service's dynamic resource (components/tokens.ts). */
export const SERVICE_RELEASE_TYPE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";

/**
 * One ServiceRelease resource: one service on one host. A service on several hosts has one per
 * host (index.ts names them `<service>@<host>`), so releases are keyed by URN, never by service.
 */
export interface ServiceRelease {
  readonly urn: string;
  /** The configured service (its `fleet:services` and `fleet:pins` key): the `name` output. */
  readonly service: string;
  /** The resource's name without `-release`: `<service>`, or `<service>@<host>` on several hosts. */
  readonly resource: string;
  /** The configured host, when the resource name carries it (`<service>@<host>`). */
  readonly hostName: string | undefined;
  /** The host's address (the `host` output). */
  readonly address: string;
  readonly releaseId: string;
  readonly commit: string;
  /** The releases the host still had after this update (what `update` may switch back to). */
  readonly retainedReleases: readonly string[];
}

/** Per URN: the releases in one checkpoint. */
export type Releases = Readonly<Record<string, ServiceRelease>>;

export interface HistoryEntry {
  /** 1-based, by order (oldest first): file backends store `version: 0` for every update. */
  readonly version: number;
  /** The `version` field as stored (0 on file backends). */
  readonly storedVersion: number;
  readonly file: string;
  readonly checkpointFile: string;
  /** Unix seconds, as stored. */
  readonly startTime: number;
  readonly endTime: number;
  readonly kind: string;
  readonly result: string;
  readonly gitHead: string | undefined;
  readonly message: string;
  /** Per URN (service and host), from the checkpoint's ServiceRelease resources. */
  readonly releases: Releases;
}

/** The `fleet:pins` config object. */
export type Pins = Record<string, { releaseId: string; commit: string }>;

export interface MissingRelease {
  readonly service: string;
  /** The host as config names it, else its address; "" when the service is not deployed at all. */
  readonly host: string;
  readonly releaseId: string;
  readonly commit: string;
  readonly message: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads a (possibly gzip-compressed) JSON file; errors name the file and what is wrong. */
export function readJsonFile(file: string): unknown {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${file}: corrupt gzip data: ${(e as Error).message}`);
    }
  } else if (bytes.readUInt32LE(0) === 0xfd2fb528) {
    throw new Error(
      `${file}: zstd-compressed (the backend writes zstd when its compression is set to zstd); ` +
        `Node ${process.versions.node} cannot read zstd: decompress it with \`zstd -d\`, or unset the compression and run an update`,
    );
  }
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/** The resources of a versioned checkpoint (a stack file or a history `.checkpoint.json`). */
export function checkpointResources(doc: unknown, file: string): Json[] {
  if (!isObject(doc) || typeof doc["version"] !== "number" || !isObject(doc["checkpoint"])) {
    throw new Error(`${file}: not a versioned checkpoint ({ version, checkpoint })`);
  }
  if (doc["version"] < 3)
    throw new Error(`${file}: checkpoint version ${doc["version"]}; fleet reads version 3 and later`);
  const latest = doc["checkpoint"]["latest"];
  if (latest === undefined || latest === null) return []; // a stack with no update yet
  const resources = isObject(latest) ? (latest["resources"] ?? []) : undefined;
  if (!Array.isArray(resources) || !resources.every(isObject)) {
    throw new Error(`${file}: checkpoint.latest.resources is not a list of resources`);
  }
  return resources;
}

function plainString(outputs: Json, key: string, where: string): string {
  const v = outputs[key];
  if (isObject(v) && SECRET_SIG_KEY in v)
    throw new Error(`${where}: output "${key}" is a secret; fleet never decrypts`);
  if (typeof v !== "string" || v === "") throw new Error(`${where}: output "${key}" is missing`);
  return v;
}

/**
 * The resource name of a URN, `urn:pulumi:<stack>::<project>::<type chain>::<name>`: everything after
 * the third `::`, since a name may itself contain `::` (sdk/go/common/resource/urn.go Name()).
 */
export function urnName(urn: string): string {
  const parts = urn.split("::");
  return parts.length >= 4 ? parts.slice(3).join("::") : "";
}

/** Per URN, the ServiceRelease resources of a checkpoint (pending deletes ignored). */
export function releasesOf(doc: unknown, file: string): Record<string, ServiceRelease> {
  const releases: Record<string, ServiceRelease> = {};
  for (const r of checkpointResources(doc, file)) {
    if (r["type"] !== SERVICE_RELEASE_TYPE || r["delete"] === true) continue;
    const urn = r["urn"];
    if (typeof urn !== "string" || !urn.startsWith("urn:pulumi:") || urnName(urn) === "")
      throw new Error(`${file}: a ${SERVICE_RELEASE_TYPE} resource has no valid urn (${JSON.stringify(urn)})`);
    const where = `${file}: ${urn}`;
    const outputs = isObject(r["outputs"]) ? r["outputs"] : {};
    const retained = outputs["retainedReleases"];
    const service = plainString(outputs, "name", where);
    // components/service.ts names its resource `${name}-release` (name: model/resource-names.ts).
    const resource = urnName(urn).replace(/-release$/, "");
    releases[urn] = {
      urn,
      service,
      resource,
      hostName: hostOfServiceResource(service, resource),
      address: plainString(outputs, "host", where),
      releaseId: plainString(outputs, "releaseId", where),
      commit: plainString(outputs, "commit", where),
      retainedReleases: Array.isArray(retained) ? retained.filter((x): x is string => typeof x === "string") : [],
    };
  }
  return releases;
}

/** The releases of one service, one per host, ordered by resource name. */
export function serviceReleases(releases: Releases, service: string): ServiceRelease[] {
  return Object.values(releases)
    .filter((r) => r.service === service)
    .sort((a, b) => a.resource.localeCompare(b.resource));
}

/** How messages name a release's host: `web1 (10.0.0.11)`, or the address alone. */
export function hostLabel(r: ServiceRelease): string {
  return r.hostName ? `${r.hostName} (${r.address})` : r.address;
}

/** The history directory and stack file base path, project layout first, then the legacy one. */
function layout(backendDir: string, project: string, stack: string): { historyDir: string; stackBase: string } {
  const root = path.join(backendDir, ".pulumi");
  const projectLayout = {
    historyDir: path.join(root, "history", project, stack),
    stackBase: path.join(root, "stacks", project, stack),
  };
  const legacy = { historyDir: path.join(root, "history", stack), stackBase: path.join(root, "stacks", stack) };
  const hasStack = (base: string) => [".json", ".json.gz", ".json.zst"].some((e) => fs.existsSync(base + e));
  if (!hasStack(projectLayout.stackBase) && hasStack(legacy.stackBase)) return legacy;
  return projectLayout;
}

/** Every update of the stack, oldest first, with the services' releases after it. */
export function listHistory(backendDir: string, project: string, stack: string): HistoryEntry[] {
  const { historyDir } = layout(backendDir, project, stack);
  if (!fs.existsSync(historyDir)) {
    throw new Error(
      `${historyDir}: no history (is ${backendDir} the file backend's directory, and was the stack updated?)`,
    );
  }
  const pattern = /^(.*)-(\d+)\.history\.(json(?:\.gz|\.zst)?)$/;
  const files = fs
    .readdirSync(historyDir)
    .map((name) => ({ name, m: pattern.exec(name) }))
    .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null && f.m[1] === stack)
    .sort((a, b) => (BigInt(a.m[2]!) < BigInt(b.m[2]!) ? -1 : 1));
  return files.map(({ name, m }, i) => {
    const file = path.join(historyDir, name);
    const checkpointFile = path.join(historyDir, `${stack}-${m[2]}.checkpoint.${m[3]}`);
    const info = readJsonFile(file);
    if (!isObject(info) || typeof info["kind"] !== "string" || typeof info["result"] !== "string") {
      throw new Error(`${file}: not an update record (kind, result, …)`);
    }
    if (!fs.existsSync(checkpointFile)) throw new Error(`${file}: its checkpoint ${checkpointFile} is missing`);
    const env = isObject(info["environment"]) ? info["environment"] : {};
    return {
      version: i + 1,
      storedVersion: typeof info["version"] === "number" ? info["version"] : 0,
      file,
      checkpointFile,
      startTime: Number(info["startTime"] ?? 0),
      endTime: Number(info["endTime"] ?? 0),
      kind: info["kind"],
      result: info["result"],
      gitHead: typeof env["git.head"] === "string" ? env["git.head"] : undefined,
      message: typeof info["message"] === "string" ? info["message"] : "",
      releases: releasesOf(readJsonFile(checkpointFile), checkpointFile),
    };
  });
}

/** The stack's current state: its releases, from the stack file the backend would use. */
export function readCurrentReleases(backendDir: string, project: string, stack: string): Releases {
  const { stackBase } = layout(backendDir, project, stack);
  const candidates = [".json", ".json.gz", ".json.zst"]
    .map((e) => stackBase + e)
    .filter((f) => fs.existsSync(f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  const file = candidates[0];
  if (!file) throw new Error(`${stackBase}.json: no such stack file`);
  return releasesOf(readJsonFile(file), file);
}

/**
 * The `fleet:pins` that re-apply update `n`: every service at the release it had then. A pin holds
 * for every host of its service (config/schema.ts pinsSchema), so a version whose hosts ran
 * different releases of one service cannot be re-applied as it was: refused, with the choices.
 */
export function pinsForVersion(entries: readonly HistoryEntry[], n: number): Pins {
  const entry = entries.find((e) => e.version === n);
  if (!entry) throw new Error(`no version ${n} in the history (versions 1…${entries.length})`);
  if (entry.result !== "succeeded") {
    throw new Error(`version ${n} (${entry.kind}) ${entry.result}: pick a succeeded version (${entry.file})`);
  }
  const names = [...new Set(Object.values(entry.releases).map((r) => r.service))].sort();
  if (names.length === 0) throw new Error(`version ${n} (${entry.kind}) has no services (${entry.checkpointFile})`);
  const pins: Pins = {};
  for (const service of names) {
    const perHost = serviceReleases(entry.releases, service);
    const first = perHost[0]!;
    if (perHost.some((r) => r.releaseId !== first.releaseId)) {
      const list = perHost.map((r) => `${r.hostName ?? r.address}=${r.releaseId}`).join(", ");
      throw new Error(
        `version ${n}: ${service} ran different releases on its hosts (${list}), and a pin holds for all of them: ` +
          `pick another version, or pin one release on every host: npm run rollback -- --service ${service} <release>`,
      );
    }
    pins[service] = { releaseId: first.releaseId, commit: first.commit };
  }
  return pins;
}

/** The pinned releases some host no longer keeps (per the current state), one per host, with what to do. */
export function missingReleases(pins: Pins, current: Releases): MissingRelease[] {
  const missing: MissingRelease[] = [];
  const advice = (pin: Pins[string]) =>
    `Deploy it from source instead: set the service's source ref to ${pin.commit}, unpin, pulumi up`;
  for (const [service, pin] of Object.entries(pins)) {
    const hosts = serviceReleases(current, service);
    if (hosts.length === 0) {
      missing.push({
        service,
        host: "",
        releaseId: pin.releaseId,
        commit: pin.commit,
        message: `${service}: release ${pin.releaseId} is not available: the service is not in the current state. ${advice(pin)}`,
      });
    }
    for (const now of hosts) {
      if (now.retainedReleases.includes(pin.releaseId)) continue;
      missing.push({
        service,
        host: now.hostName ?? now.address,
        releaseId: pin.releaseId,
        commit: pin.commit,
        message:
          `${service}: release ${pin.releaseId} is not available: ${hostLabel(now)} no longer keeps it ` +
          `(it keeps: ${now.retainedReleases.join(", ") || "none"}). ${advice(pin)}`,
      });
    }
  }
  return missing;
}
