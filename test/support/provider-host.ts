/**
 * Engine-protocol test harness for fleet's dynamic providers.
 *
 * There is no Pulumi CLI here, so we play the engine ourselves: spawn the SDK's real dynamic
 * provider host (the same `cmd/dynamic-provider` the CLI would run), talk gRPC to it with the
 * engine's request shapes, and reproduce the engine's bookkeeping that matters for fleet:
 * secrets stripped before the host sees them and re-marked by name afterwards, unknowns during
 * preview, partial failures, and what ends up in state. Engine behaviour mirrored here was read
 * from pulumi/pulumi `sdk/go/common/resource/plugin/provider_plugin.go` and
 * `pkg/resource/deploy/step_generator.go`.
 */
import { spawn, type ChildProcess } from "child_process";
import { randomBytes } from "crypto";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as pulumi from "@pulumi/pulumi";
import { ResourceProviderClient } from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as proto from "@pulumi/pulumi/proto/provider_pb";
import { Status } from "@pulumi/pulumi/proto/status_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { codeProviderConfig, shippedProviderTextOf } from "../../providers/ship";

/** The fleet project folder: the host resolves `require` from here, like under the CLI. */
export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
/** What the engine sends for a value not known yet (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** The SDK's signature key/value marking a secret: `{ [SECRET_SIG_KEY]: SECRET_SIG, value }`. */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** Stands in for encrypted text in `plainStateJson()`; never contains the secret. */
export const CIPHERTEXT = "[ciphertext]";
export const DYNAMIC_TYPE = "pulumi-nodejs:dynamic:Resource";
const PROVIDER_KEY = "__provider";

export type Props = Record<string, unknown>;

export interface SecretMarker {
  readonly [SECRET_SIG_KEY]: typeof SECRET_SIG;
  readonly value: unknown;
}

// ---------------------------------------------------------------------------------------------
// Values: secrets, unknowns, wire conversion
// ---------------------------------------------------------------------------------------------

/** Marks a value secret the way the SDK does on the wire (and in mocks' inputs). */
export function secret(value: unknown): SecretMarker {
  return { [SECRET_SIG_KEY]: SECRET_SIG, value };
}

export function isSecretMarker(v: unknown): v is SecretMarker {
  return typeof v === "object" && v !== null && (v as Props)[SECRET_SIG_KEY] === SECRET_SIG;
}

function isPlainObject(v: unknown): v is Props {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !isSecretMarker(v);
}

/** Deeply removes secret markers, keeping the values: what a secrets-refusing provider gets. */
export function stripSecrets(v: unknown): unknown {
  if (isSecretMarker(v)) return stripSecrets(v.value);
  if (Array.isArray(v)) return v.map(stripSecrets);
  if (isPlainObject(v)) return mapValues(v, stripSecrets);
  return v;
}

export function containsSecrets(v: unknown): boolean {
  if (isSecretMarker(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecrets);
  if (isPlainObject(v)) return Object.values(v).some(containsSecrets);
  return false;
}

export function containsUnknowns(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (isSecretMarker(v)) return containsUnknowns(v.value);
  if (Array.isArray(v)) return v.some(containsUnknowns);
  if (isPlainObject(v)) return Object.values(v).some(containsUnknowns);
  return false;
}

/**
 * The engine's `annotateSecrets(outs, ins)`: for every key present in both, recurse when both
 * are objects, otherwise mark the output secret if the input contains a secret anywhere. So it
 * is by key name (recursively), never by value: a secret copied into an output under another
 * name is stored in plain text.
 */
export function annotateSecrets(outs: Props, ins: Props): Props {
  const result: Props = { ...outs };
  for (const [key, inValue] of Object.entries(ins)) {
    if (!(key in result)) continue;
    const outValue = result[key];
    if (isPlainObject(outValue) && isPlainObject(inValue)) {
      result[key] = annotateSecrets(outValue, inValue);
    } else if (!isSecretMarker(outValue) && containsSecrets(inValue)) {
      result[key] = secret(outValue);
    }
  }
  return result;
}

/** Top-level keys whose value is, or contains, a secret. */
export function secretKeys(props: Props): string[] {
  return Object.keys(props).filter((k) => containsSecrets(props[k]));
}

/** Engine's `PropertyMap.DeepEquals` on our JSON-ish values (secret-ness counts). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Props)[k], (b as Props)[k]));
}

function mapValues(obj: Props, f: (v: unknown) => unknown): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(obj)) out[k] = f(v);
  return out;
}

/**
 * What the engine puts on the wire for a provider that refuses secrets: secrets unwrapped,
 * `undefined` object keys dropped and `undefined` array items as null (as the SDK serializes).
 */
function toWire(v: unknown): unknown {
  if (isSecretMarker(v)) return toWire(v.value);
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : toWire(x)));
  if (isPlainObject(v)) {
    const out: Props = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toWire(x);
    return out;
  }
  return v;
}

type JsValue = Parameters<typeof Struct.fromJavaScript>[0][string];

function toStruct(props: Props): Struct {
  return Struct.fromJavaScript(toWire(props) as Record<string, JsValue>);
}

function fromStruct(s: Struct | undefined): Props {
  return s ? (s.toJavaScript() as Props) : {};
}

export function makeUrn(name: string, type = DYNAMIC_TYPE, project = "fleet", stack = "test"): string {
  return `urn:pulumi:${stack}::${project}::${type}::${name}`;
}

function sleep(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

function urnParts(urn: string): { name: string; type: string } {
  const parts = urn.split("::");
  return {
    type: (parts[2] ?? "").split("$").pop() ?? "",
    name: parts[3] ?? "",
  };
}

// ---------------------------------------------------------------------------------------------
// Provider serialization (exactly like @pulumi/pulumi/dynamic, or fleet's shipped text)
// ---------------------------------------------------------------------------------------------

export interface SerializedProvider {
  readonly text: string;
  /** True when the closure captured a Pulumi secret: the SDK then marks `__provider` secret. */
  readonly containsSecrets: boolean;
}

// Per provider object, like the SDK's WeakMap cache: the same object always yields the same text.
const serializedProviders = new WeakMap<object, Promise<SerializedProvider>>();

export function serializeProviderDetailed(provider: object): Promise<SerializedProvider> {
  let cached = serializedProviders.get(provider);
  // fleet's own providers register the text providers/ship.ts writes (components/shipped-resource.ts).
  const shippedText = shippedProviderTextOf(provider);
  if (!cached && shippedText !== undefined) {
    cached = Promise.resolve({ text: shippedText, containsSecrets: false });
    serializedProviders.set(provider, cached);
  }
  if (!cached) {
    cached = pulumi.runtime
      .serializeFunction(() => provider, { allowSecrets: true })
      .then((sf) => ({ text: sf.text, containsSecrets: sf.containsSecrets }));
    serializedProviders.set(provider, cached);
  }
  return cached;
}

/** The `__provider` text the SDK would store for this provider object. */
export async function serializeProvider(provider: object): Promise<string> {
  return (await serializeProviderDetailed(provider)).text;
}

/** `inputs` plus `__provider`, as a dynamic resource registers them (for the raw RPCs). */
export async function withProvider(provider: object, inputs: Props): Promise<Props> {
  if (PROVIDER_KEY in inputs) throw new Error("A dynamic resource must not define the __provider key");
  const sp = await serializeProviderDetailed(provider);
  return {
    ...inputs,
    [PROVIDER_KEY]: sp.containsSecrets ? secret(sp.text) : sp.text,
  };
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** Details of an `ErrorResourceInitFailed`: the resource exists (partially created). */
export interface PartialFailure {
  readonly id: string;
  readonly properties: Props;
  readonly reasons: string[];
}

/** A provider method failed; `message` is the provider's own message. */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly method: string,
    readonly grpcCode: number,
    readonly partial: PartialFailure | undefined,
    readonly hostLogTail: string,
  ) {
    super(message);
    this.name = "ProviderError";
  }

  /**
   * What the engine reports. For a partial failure it reports an InitError built from `reasons`
   * only ("resource init failed" when there are none): the provider's message is dropped.
   */
  get engineMessage(): string {
    if (!this.partial) return this.message;
    return this.partial.reasons.length > 0 ? this.partial.reasons.join("\n") : "resource init failed";
  }
}

/** The host itself failed: did not start, died, or stopped answering. */
export class ProviderHostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProviderHostError";
  }
}

export class CheckFailedError extends Error {
  constructor(
    urn: string,
    readonly failures: CheckFailure[],
  ) {
    super(
      `resource ${urn} has check errors: ${failures.map((f) => `${f.property || "(resource)"}: ${f.reason}`).join("; ")}`,
    );
    this.name = "CheckFailedError";
  }
}

// ---------------------------------------------------------------------------------------------
// The host process and its raw RPCs
// ---------------------------------------------------------------------------------------------

export interface ProviderHostOptions {
  /** Project folder; the host resolves `require` from here. Default: fleet's root. */
  readonly cwd?: string;
  /** Extra environment for the host (wins over the defaults). */
  readonly env?: NodeJS.ProcessEnv;
  readonly startTimeoutMs?: number;
  /** gRPC deadline per call; the Node host ignores customTimeouts, so a hung provider hangs. */
  readonly callTimeoutMs?: number;
  /** Extra node flags for the host process (e.g. `--cpu-prof` when profiling a bench). */
  readonly nodeArgs?: readonly string[];
  /**
   * The provider resource's configuration the engine sends to Configure. Default: fleet's code
   * (providers/ship.ts codeProviderConfig), what components/shipped-resource.ts registers.
   */
  readonly config?: Record<string, string>;
}

export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}
export interface CheckResult {
  readonly inputs: Props;
  readonly failures: CheckFailure[];
}
export interface DiffResult {
  /** DIFF_SOME → true, DIFF_NONE → false, DIFF_UNKNOWN → undefined (engine diffs inputs itself). */
  readonly changes: boolean | undefined;
  readonly replaces: string[];
  readonly deleteBeforeReplace: boolean;
}
export interface ReadResult {
  /** "" means the resource is gone: the engine drops it from state. */
  readonly id: string;
  readonly outputs: Props;
  readonly inputs?: Props;
}
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

type RpcMethod = "configure" | "check" | "diff" | "create" | "read" | "update" | "delete";
type UnaryFn<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

const HOST_SCRIPT = "@pulumi/pulumi/cmd/dynamic-provider/index.js";
const DEFAULT_URN = makeUrn("test");
const live = new Set<ChildProcess>();
// Never leave orphaned hosts behind, even if a test forgets stop().
process.once("exit", () => live.forEach((c) => c.kill("SIGKILL")));

export class ProviderHost {
  /** RPC method names in call order (Configure included), to assert what really ran. */
  readonly calls: RpcMethod[] = [];
  private readonly output: string[] = [];
  private client: ResourceProviderClient | undefined;
  private exitInfo: ExitInfo | undefined;
  private readonly exitPromise: Promise<ExitInfo>;
  private readonly closedPromise: Promise<void>;
  private acceptsSecretsFlag = false;
  private portNumber = 0;

  private constructor(
    private readonly child: ChildProcess,
    private readonly callTimeoutMs: number,
  ) {
    this.exitPromise = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(child);
        resolve(this.exitInfo);
      });
    });
    // "close" comes once stdout/stderr are drained (unless a grandchild keeps them open).
    this.closedPromise = new Promise((resolve) => child.once("close", () => resolve()));
  }

  /** Lets the last output of a dead host arrive before we quote it. */
  private async drained(): Promise<void> {
    await Promise.race([this.closedPromise, sleep(500)]);
  }

  /** Spawns the host, reads its port, connects and sends Configure, like the engine. */
  static async start(options: ProviderHostOptions = {}): Promise<ProviderHost> {
    const cwd = options.cwd ?? PROJECT_ROOT;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PULUMI_NODEJS_PROJECT: "fleet",
      PULUMI_PROJECT: "fleet",
      PULUMI_NODEJS_STACK: "test",
      ...options.env,
    };
    // The CLI runs the host with plain node: don't let a `--import tsx` from the test runner leak in.
    delete env.NODE_OPTIONS;
    let script: string;
    try {
      script = require.resolve(HOST_SCRIPT, { paths: [cwd] });
    } catch (e) {
      throw new ProviderHostError(`cannot find ${HOST_SCRIPT} from ${cwd}: ${(e as Error).message}`);
    }
    // The argument is the engine address; the host only requires that one is given.
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, "127.0.0.1:0"], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(child);
    // A host a test forgot to stop must not keep mocha alive; the exit hook above kills it.
    child.unref();
    for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    const host = new ProviderHost(child, options.callTimeoutMs ?? 60_000);
    try {
      host.portNumber = await host.readPort(options.startTimeoutMs ?? 20_000);
      host.client = new ResourceProviderClient(`127.0.0.1:${host.portNumber}`, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": 400 * 1024 * 1024,
        "grpc.max_send_message_length": 400 * 1024 * 1024,
      });
      await host.configure(options.config ?? codeProviderConfig());
      return host;
    } catch (e) {
      await host.stop();
      throw e;
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  get port(): number {
    return this.portNumber;
  }
  /** What the host answered to Configure (false for the Node dynamic provider host). */
  get acceptsSecrets(): boolean {
    return this.acceptsSecretsFlag;
  }
  /** Set once the process has exited. */
  get exited(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Everything the host printed after its port line (provider console.log/error go here). */
  logs(): string {
    return this.output.join("");
  }
  clearLogs(): void {
    this.output.length = 0;
  }
  /**
   * Waits until the host has printed `text`: its stdout travels apart from the gRPC answer, so
   * a line printed during a call may arrive just after the call returns.
   */
  async waitForLog(text: string, timeoutMs = 2000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.logs().includes(text) && Date.now() < deadline) await sleep(10);
    return this.logs();
  }
  private logTail(lines = 30): string {
    return this.logs().split("\n").slice(-lines).join("\n");
  }

  async stop(): Promise<void> {
    this.client?.close();
    this.client = undefined;
    if (this.exitInfo || this.child.pid === undefined) return; // exited, or never spawned
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
    await this.exitPromise;
    clearTimeout(timer);
  }

  private readPort(timeoutMs: number): Promise<number> {
    const child = this.child;
    return new Promise<number>((resolve, reject) => {
      let first: string | undefined;
      let pending = "";
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(new ProviderHostError(`provider host ${why}\n--- host output ---\n${pending}${this.logTail()}`));
      };
      const timer = setTimeout(() => fail(`did not print its port within ${timeoutMs} ms`), timeoutMs);
      child.stdout?.on("data", (chunk: Buffer) => {
        if (first !== undefined) return void this.output.push(chunk.toString());
        pending += chunk.toString();
        const nl = pending.indexOf("\n");
        if (nl < 0) return;
        first = pending.slice(0, nl).trim();
        const rest = pending.slice(nl + 1);
        if (rest) this.output.push(rest);
        clearTimeout(timer);
        if (/^\d+$/.test(first)) resolve(Number(first));
        else fail(`printed ${JSON.stringify(first)} instead of a port`);
      });
      child.stderr?.on("data", (chunk: Buffer) => void this.output.push(chunk.toString()));
      child.once("error", (e) => fail(`could not be spawned: ${e.message}`));
      void this.exitPromise.then(async (x) => {
        if (first !== undefined) return;
        await this.drained();
        fail(`exited (code ${x.code}, signal ${x.signal}) before printing its port`);
      });
    });
  }

  private async rpc<Req, Res>(method: RpcMethod, req: Req): Promise<Res> {
    if (!this.client || this.exitInfo) {
      throw new ProviderHostError(`provider host is not running (${method})\n${this.logTail()}`);
    }
    this.calls.push(method);
    const fn = (this.client[method] as unknown as UnaryFn<Req, Res>).bind(this.client);
    try {
      return await new Promise<Res>((resolve, reject) => {
        fn(req, new grpc.Metadata(), { deadline: Date.now() + this.callTimeoutMs }, (err, res) =>
          err ? reject(err) : resolve(res),
        );
      });
    } catch (e) {
      throw await this.toError(method, e as grpc.ServiceError);
    }
  }

  private async toError(method: RpcMethod, err: grpc.ServiceError): Promise<Error> {
    if (err.code === grpc.status.DEADLINE_EXCEEDED) {
      return new ProviderHostError(`${method} got no answer within ${this.callTimeoutMs} ms\n${this.logTail()}`);
    }
    if (
      err.code === grpc.status.UNAVAILABLE ||
      err.code === grpc.status.CANCELLED ||
      err.code === grpc.status.INTERNAL
    ) {
      // A dying host shows up as a transport error; give the exit event a moment to arrive.
      const exit = await Promise.race([this.exitPromise, sleep(1000)]);
      if (exit) {
        await this.drained();
        return new ProviderHostError(
          `provider host exited (code ${exit.code}, signal ${exit.signal}) during ${method}\n--- host output (tail) ---\n${this.logTail()}`,
        );
      }
    }
    return new ProviderError(err.details || err.message, method, err.code, decodePartial(err), this.logTail());
  }

  private async configure(config: Record<string, string>): Promise<void> {
    // What the engine sends (provider_plugin.go Configure); the Node host answers acceptSecrets=false.
    const req = new proto.ConfigureRequest();
    req.setArgs(Struct.fromJavaScript(config));
    req.setAcceptsecrets(true);
    req.setAcceptresources(true);
    req.setSendsOldInputs(true);
    req.setSendsOldInputsToDelete(true);
    const resp = await this.rpc<proto.ConfigureRequest, proto.ConfigureResponse>("configure", req);
    this.acceptsSecretsFlag = resp.getAcceptsecrets();
  }

  /** Check(olds, news). Returned inputs are re-marked secret by name from `news`. */
  async check(urn: string, olds: Props, news: Props): Promise<CheckResult> {
    const req = new proto.CheckRequest();
    const { name, type } = urnParts(urn);
    req.setUrn(urn).setName(name).setType(type);
    req.setOlds(toStruct(olds)).setNews(toStruct(news));
    req.setRandomseed(randomBytes(32));
    const resp = await this.rpc<proto.CheckRequest, proto.CheckResponse>("check", req);
    return {
      inputs: annotateSecrets(fromStruct(resp.getInputs()), news),
      failures: resp.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  /** Diff: note `olds` are the old OUTPUTS; old inputs travel separately. */
  async diff(id: string, oldOutputs: Props, news: Props, oldInputs: Props, urn = DEFAULT_URN): Promise<DiffResult> {
    const req = new proto.DiffRequest();
    const { name, type } = urnParts(urn);
    req.setId(id).setUrn(urn).setName(name).setType(type);
    req.setOlds(toStruct(oldOutputs)).setNews(toStruct(news)).setOldInputs(toStruct(oldInputs));
    const resp = await this.rpc<proto.DiffRequest, proto.DiffResponse>("diff", req);
    const C = proto.DiffResponse.DiffChanges;
    const c = resp.getChanges();
    return {
      changes: c === C.DIFF_SOME ? true : c === C.DIFF_NONE ? false : undefined,
      replaces: resp.getReplacesList(),
      deleteBeforeReplace: resp.getDeletebeforereplace(),
    };
  }

  /** Create(checked inputs). Outputs are re-marked secret by name from the inputs. */
  async create(inputs: Props, urn = DEFAULT_URN): Promise<{ id: string; outputs: Props }> {
    const req = new proto.CreateRequest();
    const { name, type } = urnParts(urn);
    req.setUrn(urn).setName(name).setType(type).setProperties(toStruct(inputs));
    let resp: proto.CreateResponse;
    try {
      resp = await this.rpc<proto.CreateRequest, proto.CreateResponse>("create", req);
    } catch (e) {
      throw annotatePartial(e, inputs);
    }
    if (!resp.getId()) {
      // The engine refuses an empty id (provider_plugin.go Create) even though the work was done.
      throw new ProviderError(
        `plugin for package 'pulumi-nodejs' returned empty resource.ID from create '${urn}'`,
        "create",
        0,
        undefined,
        this.logTail(),
      );
    }
    return {
      id: resp.getId(),
      outputs: annotateSecrets(fromStruct(resp.getProperties()), inputs),
    };
  }

  /** Read(id, stored outputs, stored inputs), as `pulumi refresh` does. */
  async read(id: string, outputs: Props, inputs: Props, urn = DEFAULT_URN): Promise<ReadResult> {
    const req = new proto.ReadRequest();
    const { name, type } = urnParts(urn);
    req.setId(id).setUrn(urn).setName(name).setType(type);
    req.setProperties(toStruct(outputs)).setInputs(toStruct(inputs));
    const resp = await this.rpc<proto.ReadRequest, proto.ReadResponse>("read", req);
    const result: ReadResult = {
      id: resp.getId(),
      outputs: annotateSecrets(fromStruct(resp.getProperties()), outputs),
    };
    return resp.hasInputs()
      ? {
          ...result,
          inputs: annotateSecrets(fromStruct(resp.getInputs()), inputs),
        }
      : result;
  }

  /** Update(id, old OUTPUTS, news, old inputs). Outputs re-marked from `news`. */
  async update(
    id: string,
    oldOutputs: Props,
    news: Props,
    oldInputs: Props,
    urn = DEFAULT_URN,
  ): Promise<{ outputs: Props }> {
    const req = new proto.UpdateRequest();
    const { name, type } = urnParts(urn);
    req.setId(id).setUrn(urn).setName(name).setType(type);
    req.setOlds(toStruct(oldOutputs)).setNews(toStruct(news)).setOldInputs(toStruct(oldInputs));
    try {
      const resp = await this.rpc<proto.UpdateRequest, proto.UpdateResponse>("update", req);
      return {
        outputs: annotateSecrets(fromStruct(resp.getProperties()), news),
      };
    } catch (e) {
      throw annotatePartial(e, news);
    }
  }

  /** Delete(id, stored outputs, old inputs). The host only looks at the outputs. */
  async delete(id: string, outputs: Props, oldInputs: Props, urn = DEFAULT_URN): Promise<void> {
    const req = new proto.DeleteRequest();
    const { name, type } = urnParts(urn);
    req.setId(id).setUrn(urn).setName(name).setType(type);
    req.setProperties(toStruct(outputs)).setOldInputs(toStruct(oldInputs));
    await this.rpc<proto.DeleteRequest, unknown>("delete", req);
  }
}

/** Unpacks `ErrorResourceInitFailed` from the `grpc-status-details-bin` trailer, if any. */
function decodePartial(err: grpc.ServiceError): PartialFailure | undefined {
  const bin = err.metadata?.get("grpc-status-details-bin")[0];
  if (!bin || typeof bin === "string") return undefined;
  for (const any of Status.deserializeBinary(bin).getDetailsList()) {
    const detail = any.unpack(proto.ErrorResourceInitFailed.deserializeBinary, "pulumirpc.ErrorResourceInitFailed");
    if (detail) {
      return {
        id: detail.getId(),
        properties: fromStruct(detail.getProperties()),
        reasons: detail.getReasonsList(),
      };
    }
  }
  return undefined;
}

/** The engine annotates partial-failure properties with the request's secrets too. */
function annotatePartial(e: unknown, ins: Props): unknown {
  if (!(e instanceof ProviderError) || !e.partial) return e;
  const partial = {
    ...e.partial,
    properties: annotateSecrets(e.partial.properties, ins),
  };
  return new ProviderError(e.message, e.method, e.grpcCode, partial, e.hostLogTail);
}

// ---------------------------------------------------------------------------------------------
// Engine simulator for one dynamic resource
// ---------------------------------------------------------------------------------------------

export type Operation = "create" | "update" | "replace" | "same";

export interface SimulatedResourceOptions {
  readonly name: string;
  /** Resource option `additionalSecretOutputs`: top-level output names stored as secrets. */
  readonly additionalSecretOutputs?: string[];
  /** Resource option `deleteBeforeReplace`; overrides what diff says when set. */
  readonly deleteBeforeReplace?: boolean;
}

/** A snapshot of what the engine would record. `inputs`/`outputs` carry secret markers. */
export interface ResourceState {
  readonly urn: string;
  readonly id: string;
  readonly inputs: Props;
  readonly outputs: Props;
  readonly plainInputs: Props;
  readonly plainOutputs: Props;
  readonly secretInputKeys: string[];
  readonly secretOutputKeys: string[];
  /** Set after a partial failure (provider threw an error carrying `.id`). */
  readonly initErrors?: string[];
}

export interface PreviewResult {
  readonly op: Operation;
  /** Checked inputs (secret-marked), unknowns included. */
  readonly inputs: Props;
  readonly diff?: DiffResult;
}

interface Stored {
  readonly id: string;
  readonly inputs: Props;
  readonly outputs: Props;
  readonly initErrors?: string[];
}

export class SimulatedResource {
  readonly urn: string;
  private current: Stored | undefined;
  private readonly pending: Stored[] = [];

  constructor(
    private host: ProviderHost,
    private readonly provider: object,
    private readonly options: SimulatedResourceOptions,
  ) {
    this.urn = makeUrn(options.name);
  }

  /**
   * The engine starts a new provider host for each run: later calls go to `host`, and the state
   * stays as recorded (a deployer killed mid-run, then the next `pulumi up` from another process).
   */
  rebind(host: ProviderHost): void {
    this.host = host;
  }

  get state(): ResourceState | undefined {
    return this.current && this.snapshot(this.current);
  }

  /** Old resources of a create-before-delete replacement whose delete failed (still in state). */
  get pendingDeletes(): ResourceState[] {
    return this.pending.map((s) => this.snapshot(s));
  }

  /** `pulumi preview`: Check and Diff only; Create/Update never reach a dynamic provider. */
  async preview(inputs: Props): Promise<PreviewResult> {
    const news = await this.goal(inputs);
    const old = this.current;
    const checked = await this.checkOrThrow(old?.inputs ?? {}, news);
    if (!old) return { op: "create", inputs: checked };
    const diff = await this.host.diff(old.id, old.outputs, checked, old.inputs, this.urn);
    const op = decide(diff, old, checked);
    // A replacement re-runs Check without olds, in preview too.
    return {
      op,
      diff,
      inputs: op === "replace" ? await this.checkOrThrow({}, news) : checked,
    };
  }

  /** `pulumi up` for this resource. On failure, state is what the engine would have recorded. */
  async up(inputs: Props): Promise<{ op: Operation; state: ResourceState | undefined }> {
    if (containsUnknowns(inputs)) throw new Error("up(): inputs contain UNKNOWN; unknowns only exist during preview");
    const news = await this.goal(inputs);
    const old = this.current;
    const checked = await this.checkOrThrow(old?.inputs ?? {}, news);
    if (!old) {
      await this.createNew(checked);
      return { op: "create", state: this.state };
    }
    const diff = await this.host.diff(old.id, old.outputs, checked, old.inputs, this.urn);
    const op = decide(diff, old, checked);
    if (op === "same") {
      // A same step records the new inputs and keeps the old outputs.
      this.current = { ...old, inputs: checked };
    } else if (op === "update") {
      await this.updateExisting(old, checked);
    } else {
      const fresh = await this.checkOrThrow({}, news);
      if (this.options.deleteBeforeReplace ?? diff.deleteBeforeReplace) {
        await this.host.delete(old.id, old.outputs, old.inputs, this.urn);
        this.current = undefined;
        await this.createNew(fresh);
      } else {
        await this.createNew(fresh, old);
        try {
          await this.host.delete(old.id, old.outputs, old.inputs, this.urn);
        } catch (e) {
          this.pending.push(old);
          throw e;
        }
      }
    }
    return { op, state: this.state };
  }

  /** `pulumi refresh`: Read with the stored state; an empty id drops the resource. */
  async refresh(): Promise<ResourceState | undefined> {
    const old = this.current;
    if (!old) return undefined;
    const r = await this.host.read(old.id, old.outputs, old.inputs, this.urn);
    this.current = r.id
      ? {
          id: r.id,
          inputs: r.inputs ?? old.inputs,
          outputs: this.secretOutputs(r.outputs),
        }
      : undefined;
    return this.state;
  }

  /** `pulumi destroy`: pending deletes first, then the resource. Uses the stored provider code. */
  async destroy(): Promise<void> {
    while (this.pending.length > 0) {
      const s = this.pending[0]!;
      await this.host.delete(s.id, s.outputs, s.inputs, this.urn);
      this.pending.shift();
    }
    if (this.current) {
      await this.host.delete(this.current.id, this.current.outputs, this.current.inputs, this.urn);
      this.current = undefined;
    }
  }

  /**
   * The state as the engine would write it to a checkpoint: secrets replaced by a ciphertext
   * placeholder. Search it for a secret's value to prove it is not stored in plain text.
   */
  plainStateJson(): string {
    const encrypt = (v: unknown): unknown => {
      if (isSecretMarker(v)) return { [SECRET_SIG_KEY]: SECRET_SIG, ciphertext: CIPHERTEXT };
      if (Array.isArray(v)) return v.map(encrypt);
      if (isPlainObject(v)) return mapValues(v, encrypt);
      return v;
    };
    const resource = (s: Stored, deleted: boolean): Props => ({
      urn: this.urn,
      custom: true,
      ...(deleted ? { delete: true } : {}),
      id: s.id,
      type: DYNAMIC_TYPE,
      inputs: encrypt(s.inputs),
      outputs: encrypt(s.outputs),
      ...(this.options.additionalSecretOutputs
        ? { additionalSecretOutputs: this.options.additionalSecretOutputs }
        : {}),
      ...(s.initErrors ? { initErrors: s.initErrors } : {}),
    });
    const resources = [
      ...this.pending.map((s) => resource(s, true)),
      ...(this.current ? [resource(this.current, false)] : []),
    ];
    return JSON.stringify({ resources }, null, 2);
  }

  private async goal(inputs: Props): Promise<Props> {
    return withProvider(this.provider, inputs);
  }

  private async checkOrThrow(olds: Props, news: Props): Promise<Props> {
    const { inputs, failures } = await this.host.check(this.urn, olds, news);
    if (failures.length > 0) throw new CheckFailedError(this.urn, failures);
    return inputs;
  }

  /** Create; a partial failure is recorded (id + error properties + init errors), like the engine. */
  private async createNew(inputs: Props, replacing?: Stored): Promise<void> {
    try {
      const { id, outputs } = await this.host.create(inputs, this.urn);
      this.current = { id, inputs, outputs: this.secretOutputs(outputs) };
    } catch (e) {
      if (e instanceof ProviderError && e.partial) {
        if (replacing) this.pending.push(replacing);
        this.current = this.partialState(e.partial.id, inputs, e.partial);
      }
      throw e;
    }
  }

  /** Update; on plain failure the previous state stays (the engine records nothing new). */
  private async updateExisting(old: Stored, news: Props): Promise<void> {
    try {
      const { outputs } = await this.host.update(old.id, old.outputs, news, old.inputs, this.urn);
      this.current = {
        id: old.id,
        inputs: news,
        outputs: this.secretOutputs(outputs),
      };
    } catch (e) {
      if (e instanceof ProviderError && e.partial) this.current = this.partialState(old.id, news, e.partial);
      throw e;
    }
  }

  /**
   * What the engine records for a partial failure: the error's `properties` become the outputs
   * (the host does not add `__provider` to them) and only non-empty `reasons` become init errors.
   */
  private partialState(id: string, inputs: Props, partial: PartialFailure): Stored {
    const outputs = this.secretOutputs(partial.properties);
    return partial.reasons.length > 0 ? { id, inputs, outputs, initErrors: partial.reasons } : { id, inputs, outputs };
  }

  private secretOutputs(outputs: Props): Props {
    const out = { ...outputs };
    for (const k of this.options.additionalSecretOutputs ?? []) {
      if (k in out && !isSecretMarker(out[k])) out[k] = secret(out[k]);
    }
    return out;
  }

  private snapshot(s: Stored): ResourceState {
    return {
      urn: this.urn,
      id: s.id,
      inputs: s.inputs,
      outputs: s.outputs,
      plainInputs: stripSecrets(s.inputs) as Props,
      plainOutputs: stripSecrets(s.outputs) as Props,
      secretInputKeys: secretKeys(s.inputs),
      secretOutputKeys: secretKeys(s.outputs),
      ...(s.initErrors ? { initErrors: s.initErrors } : {}),
    };
  }
}

/** step_generator.go: DIFF_UNKNOWN → compare inputs; replace needs changes + replace keys; init errors force an update. */
function decide(diff: DiffResult, old: Stored, checked: Props): Operation {
  const changes = diff.changes ?? !deepEqual(old.inputs, checked);
  if (changes) return diff.replaces.length > 0 ? "replace" : "update";
  return old.initErrors && old.initErrors.length > 0 ? "update" : "same";
}
