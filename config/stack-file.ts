import { spawnSync, type SpawnSyncReturns } from "child_process";
import { pulumiInvocation, type Invocation } from "../engine/invoke";
import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";
import type { FleetConfig } from "./schema";

/**
 * A stack's config for the operator scripts (status, deploy, drift, restore), kept as Pulumi keeps
 * it: from `pulumi config --json --show-secrets` when the CLI answers, else from
 * Pulumi.<stack>.yaml, where a secret is only its ciphertext.
 *
 * Format facts (pulumi/pulumi):
 * - pkg/cmd/pulumi/config/config.go `configValueJSON`: per key `{ value?, objectValue?, secret }`;
 *   `value` is the string as stored (decrypted with --show-secrets), `objectValue` is set only for
 *   objects (YAML maps and lists, `config set --path`). A plain value stays a string, JSON or not.
 * - sdk/go/common/resource/config/value.go: in the stack file a secret is `{ secure: <ciphertext> }`,
 *   at the top or as a leaf of an object; a top-level scalar is its text.
 * - sdk/nodejs/config.ts `Config.getObject`: JSON.parse of the string; index.ts reads every
 *   `fleet:` key that way, so fleetValues does the same for the scripts.
 */

/**
 * Holds the place of a secret only known as ciphertext, so that validation judges the rest. It
 * passes every rule fleet has for a string that may be secret (an http(s) URL, one line, not
 * empty); `.invalid` never resolves (RFC 2606). A script that needs the value itself asks
 * `unreadableSecrets` first and refuses with secretsProblem.
 */
export const SECRET_STAND_IN = "https://secret.invalid/";

/** A secret only known as ciphertext: its key, and its path as `--path` names it. */
export interface UnreadableSecret {
  readonly key: string;
  /** `fleet:privateKeys.pi` for a leaf; the key itself when the whole value is secret. */
  readonly path: string;
}

export interface StackValues {
  /** Per full key (`fleet:hosts`, `hcloud:token`): strings stay strings, objects stay objects. */
  readonly values: Record<string, unknown>;
  readonly unreadableSecrets: readonly UnreadableSecret[];
}

export interface StackConfig extends StackValues {
  /** Where the values came from. */
  readonly source: string;
  /** Why `pulumi config` did not answer, when the stack file was read instead. */
  readonly cliProblem: string | undefined;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A key path as `pulumi config set --path` takes it: `fleet:notify[0].url`, `fleet:privateKeys["a b"]`. */
export function configPath(key: string, segments: readonly (string | number)[]): string {
  return (
    key +
    segments
      .map((s) =>
        typeof s === "number" ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_-]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`,
      )
      .join("")
  );
}

const isSecure = (v: unknown): v is { secure: unknown } => isObject(v) && Object.keys(v).length === 1 && "secure" in v;

/** An object value with its `{ secure }` leaves replaced by the stand-in; their paths in `found`. */
function standInSecrets(v: unknown, key: string, at: (string | number)[], found: UnreadableSecret[]): unknown {
  if (isSecure(v)) {
    found.push({ key, path: configPath(key, at) });
    return SECRET_STAND_IN;
  }
  if (Array.isArray(v)) return v.map((x, i) => standInSecrets(x, key, [...at, i], found));
  if (isObject(v))
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, standInSecrets(x, key, [...at, k], found)]));
  return v;
}

/** `pulumi config --json --show-secrets` output, as values. */
export function parseCliConfig(stdout: string): StackValues {
  const raw = JSON.parse(stdout) as Record<string, { value?: string; objectValue?: unknown; secret?: boolean }>;
  const values: Json = {};
  const unreadableSecrets: UnreadableSecret[] = [];
  for (const [key, v] of Object.entries(raw)) {
    if (v.objectValue !== undefined) values[key] = v.objectValue;
    else if (typeof v.value === "string") values[key] = v.value;
    else if (v.secret) {
      // Without --show-secrets the CLI leaves a secret's value out.
      unreadableSecrets.push({ key, path: key });
      values[key] = SECRET_STAND_IN;
    }
  }
  return { values, unreadableSecrets };
}

/** A Pulumi.<stack>.yaml's `config:`, as values; secrets are ciphertext, so stand-ins take their place. */
export function parseStackFile(text: string, file: string): StackValues {
  let doc: unknown;
  try {
    doc = load(text);
  } catch (e) {
    throw new Error(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  const config = isObject(doc) ? (doc["config"] ?? {}) : {};
  if (!isObject(config)) throw new Error(`${file}: config: must be a map of keys to values`);
  const values: Json = {};
  const unreadableSecrets: UnreadableSecret[] = [];
  for (const [key, v] of Object.entries(config)) {
    if (v === null || v === undefined) values[key] = "";
    else if (typeof v === "object") values[key] = standInSecrets(v, key, [], unreadableSecrets);
    else values[key] = String(v);
  }
  return { values, unreadableSecrets };
}

/**
 * The `fleet:` keys without the namespace, as index.ts reads them (`Config.getObject`: a string is
 * JSON-parsed, e.g. `fleet:pins` set as one JSON string). A string that is not JSON stays a string
 * (the program's getObject would refuse it), so validation names its key.
 */
export function fleetValues(values: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Json = {};
  for (const [key, v] of Object.entries(values)) {
    if (!key.startsWith("fleet:")) continue;
    let value = v;
    if (typeof v === "string" && v !== SECRET_STAND_IN) {
      try {
        value = JSON.parse(v);
      } catch {
        value = v;
      }
    }
    out[key.slice("fleet:".length)] = value;
  }
  return out;
}

/** `pulumi config --json --show-secrets` in `cwd`, through engine/invoke.ts; no CLI reads as a failed run. */
function cliConfig(stack: string, cwd: string): SpawnSyncReturns<string> {
  let run: Invocation;
  try {
    run = pulumiInvocation(["config", "--json", "--show-secrets", "--stack", stack]);
  } catch (err) {
    return { pid: 0, output: [], stdout: "", stderr: "", status: 127, signal: null, error: err as Error };
  }
  return spawnSync(run.command, run.args, { cwd, env: run.env, encoding: "utf8" });
}

/** The stack's config: from the Pulumi CLI run in `cwd` when it answers, else from `cwd`/Pulumi.<stack>.yaml. */
export function stackConfig(stack: string, cwd: string = process.cwd()): StackConfig {
  const cli = cliConfig(stack, cwd);
  if (cli.status === 0) {
    try {
      return { ...parseCliConfig(cli.stdout), source: `pulumi config --stack ${stack}`, cliProblem: undefined };
    } catch {
      // Not the CLI's JSON (an old CLI, or a shim): the stack file is the next best source.
    }
  }
  const said = (cli.error ? cli.error.message : `${cli.stderr ?? ""}${cli.stdout ?? ""}`).trim().split("\n")[0];
  const cliProblem = `\`pulumi config --show-secrets --stack ${stack}\` did not answer (${said || `exit ${cli.status}`})`;
  const file = path.join(cwd, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file))
    throw new Error(
      `${cliProblem}, and there is no ${file}: run from the project folder (or give --cwd), or check --stack`,
    );
  return { ...parseStackFile(fs.readFileSync(file, "utf8"), file), source: file, cliProblem };
}

/** The `fleet:` keys of a stack's config (see fleetValues), with what is known of its secrets. */
export function fleetConfigOf(
  stack: string,
  cwd: string = process.cwd(),
): { readonly raw: Record<string, unknown> } & StackConfig {
  const cfg = stackConfig(stack, cwd);
  return { ...cfg, raw: fleetValues(cfg.values) };
}

/**
 * Why a script cannot go on without these secrets, and what to do; `alternative` is another way
 * out, if the script has one.
 */
export function secretsProblem(cfg: StackConfig, secrets: readonly UnreadableSecret[], alternative = ""): string {
  const paths = secrets.map((s) => s.path);
  const what = paths.length === 1 ? `${paths[0]} is a secret` : `${paths.join(", ")} are secrets`;
  return (
    `${what}, and only ${paths.length === 1 ? "its" : "their"} ciphertext is in ${cfg.source}` +
    (cfg.cliProblem ? ` because ${cfg.cliProblem}` : "") +
    `. Let the Pulumi CLI decrypt: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE (passphrase stacks), ` +
    `or log in to the stack's backend (pulumi login), and run this again${alternative ? `; or ${alternative}` : ""}.`
  );
}

/** The unreadable secrets that are a whole `fleet:` key: with those, the config cannot even be checked. */
export function wholeFleetSecrets(secrets: readonly UnreadableSecret[]): UnreadableSecret[] {
  return secrets.filter((s) => s.key.startsWith("fleet:") && s.path === s.key);
}

/**
 * The secret private key a connection to `host` needs (its own, or a bastion's on its `jump`
 * chain) when that key is only ciphertext here; undefined when every key it needs is readable.
 */
export function unreadableKeyFor(
  host: string,
  cfg: FleetConfig,
  secrets: readonly UnreadableSecret[],
): UnreadableSecret | undefined {
  const seen = new Set<string>();
  for (let h: string | undefined = host; h !== undefined && !seen.has(h);) {
    seen.add(h);
    const spec: FleetConfig["hosts"][string] | undefined = cfg.hosts[h];
    if (!spec || spec.kind !== "existing") return undefined;
    const keyPath = configPath("fleet:privateKeys", [h]);
    const secret = spec.privateKeyFile ? undefined : secrets.find((s) => s.path === keyPath);
    if (secret) return secret;
    h = spec.jump;
  }
  return undefined;
}

/** The Pulumi project's name (`name:` in <cwd>/Pulumi.yaml), which names its state folders. */
export function projectNameOf(cwd: string): string {
  const file = path.join(cwd, "Pulumi.yaml");
  let doc: unknown;
  try {
    doc = load(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: cannot read the project's name: ${(e as Error).message} (give --cwd <project folder>)`);
  }
  const name = isObject(doc) ? doc["name"] : undefined;
  if (typeof name !== "string" || name === "") throw new Error(`${file}: no project name (name:)`);
  return name;
}
