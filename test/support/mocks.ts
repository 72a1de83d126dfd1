/**
 * Pulumi mocks helpers: record every resource registration and invoke, answer with
 * caller-supplied state, and read Outputs back in tests.
 *
 * Call `installMocks()` BEFORE importing (or constructing) the program under test: resources
 * registered earlier went to no monitor. Mocks never run provider code (dynamic providers are
 * still serialized into `__provider`, so serialization errors do show).
 */
import * as pulumi from "@pulumi/pulumi";

type Inputs = Record<string, unknown>;

export interface Registration {
  readonly type: string;
  readonly name: string;
  /** As the SDK sent them: secrets appear as `{ "4dabf18193072939515e22adb298388d": …, value }`. */
  readonly inputs: Inputs;
  /** false for ComponentResources. */
  readonly custom: boolean;
  readonly kind: "custom" | "component";
  readonly provider?: string;
  /** The `import` id, or the id of a `.get()` read. */
  readonly importId?: string;
  /** What the mock answered. */
  readonly id: string | undefined;
  readonly state: Inputs;
}

export interface CallRecord {
  readonly token: string;
  readonly inputs: Inputs;
  readonly provider?: string;
  readonly result: Inputs;
}

/** What a per-type callback may answer; omitted fields fall back to the defaults. */
export interface MockAnswer {
  readonly id?: string;
  /** Merged over the inputs, which are echoed back as state by default. */
  readonly state?: Inputs;
}

export interface MockOptions {
  /** Run as `pulumi preview`. Default false. */
  readonly preview?: boolean;
  readonly project?: string;
  readonly stack?: string;
  /** Per-resource answer (e.g. switch on `args.type`); undefined → defaults. */
  readonly newResource?: (
    args: pulumi.runtime.MockResourceArgs,
  ) => MockAnswer | undefined | Promise<MockAnswer | undefined>;
  /** Invoke results; undefined → `{}`. */
  readonly call?: (args: pulumi.runtime.MockCallArgs) => Inputs | undefined | Promise<Inputs | undefined>;
}

const registrations: Registration[] = [];
const calls: CallRecord[] = [];

/**
 * Installs recording mocks for project "fleet", stack "test". Default answers: state = inputs;
 * id = `${name}-id` for custom resources, none during preview (an unknown id, as in a real
 * preview) and none for components. Also clears previous records.
 */
export async function installMocks(options: MockOptions = {}): Promise<void> {
  reset();
  const preview = options.preview ?? false;
  const mocks: pulumi.runtime.Mocks = {
    async newResource(args) {
      const custom = args.custom ?? false;
      const answer = (await options.newResource?.(args)) ?? {};
      const id = answer.id ?? (custom && !preview ? `${args.name}-id` : undefined);
      const state: Inputs = { ...(args.inputs as Inputs), ...answer.state };
      registrations.push({
        type: args.type,
        name: args.name,
        inputs: args.inputs as Inputs,
        custom,
        kind: custom ? "custom" : "component",
        ...(args.provider ? { provider: args.provider } : {}),
        ...(args.id ? { importId: args.id } : {}),
        id,
        state,
      });
      return { id, state };
    },
    async call(args) {
      const result = (await options.call?.(args)) ?? {};
      calls.push({
        token: args.token,
        inputs: args.inputs as Inputs,
        ...(args.provider ? { provider: args.provider } : {}),
        result,
      });
      return result;
    },
  };
  await pulumi.runtime.setMocks(mocks, options.project ?? "fleet", options.stack ?? "test", preview);
  recordDependencies();
}

const dependencies: Record<string, string[]> = {};
/** Per registration (`type::name`): its parent's URN ("" for none) and its own, as the monitor had them. */
const placement: Record<string, { parent: string; urn?: string }> = {};

/**
 * Mocks do not pass a registration's dependencies to `newResource`; the engine orders
 * operations by them, so record them from the monitor's requests (URNs, components expanded).
 */
function recordDependencies(): void {
  interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getDependenciesList(): string[];
  }
  type Callback = (err: unknown, res?: { getUrn(): string }) => void;
  const settings = require("@pulumi/pulumi/runtime/settings") as {
    getMonitor(): { registerResource(req: RegisterRequest, ...rest: unknown[]): unknown } | undefined;
  };
  const monitor = settings.getMonitor();
  if (!monitor) throw new Error("no mock monitor after setMocks (SDK internals changed?)");
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: RegisterRequest, ...rest: unknown[]) => {
    const key = `${req.getType()}::${req.getName()}`;
    dependencies[key] = req.getDependenciesList();
    const at: { parent: string; urn?: string } = { parent: req.getParent() };
    placement[key] = at;
    const [callback, ...more] = rest;
    if (typeof callback !== "function") return register(req, ...rest);
    const recordUrn: Callback = (err, res) => {
      if (res) at.urn = res.getUrn();
      (callback as Callback)(err, res);
    };
    return register(req, recordUrn, ...more);
  };
}

/** The URNs a registration depends on (what the engine waits for before creating or updating it). */
export function dependenciesOf(type: string, name: string): string[] {
  const deps = dependencies[`${type}::${name}`];
  if (!deps) throw new Error(`no registration of ${type} "${name}" was seen by the monitor`);
  return deps;
}

/** A registration's parent URN ("" for none) and its URN, as the mock monitor made them. */
export function placementOf(type: string, name: string): { readonly parent: string; readonly urn?: string } {
  const at = placement[`${type}::${name}`];
  if (!at) throw new Error(`no registration of ${type} "${name}" was seen by the monitor`);
  return at;
}

/** Forgets what was recorded (the installed mocks stay). */
export function reset(): void {
  registrations.length = 0;
  calls.length = 0;
  for (const k of Object.keys(dependencies)) delete dependencies[k];
  for (const k of Object.keys(placement)) delete placement[k];
}

export function allRegistrations(): readonly Registration[] {
  return [...registrations];
}

export function allCalls(): readonly CallRecord[] {
  return [...calls];
}

export function findByType(type: string): Registration[] {
  return registrations.filter((r) => r.type === type);
}

/** The one registration of `type` named `name`; throws (listing what exists) otherwise. */
export function findResource(type: string, name: string): Registration {
  const found = registrations.filter((r) => r.type === type && r.name === name);
  if (found.length === 1) return found[0]!;
  const known = registrations.map((r) => `  ${r.type} ${r.name}`).join("\n") || "  (none)";
  throw new Error(
    `${found.length === 0 ? "no" : found.length} registration(s) of ${type} "${name}"; registered:\n${known}`,
  );
}

// Internal SDK APIs (not in the .d.ts): Output#promise and the RPC queue. Fine in tests only.
interface OutputInternals<T> {
  promise(withUnknowns?: boolean): Promise<T>;
  isKnown: Promise<boolean>;
}
interface SettingsInternals {
  waitForRPCs(): Promise<void>;
}

function internals<T>(output: pulumi.Output<T>): OutputInternals<T> {
  const o = output as unknown as Partial<OutputInternals<T>>;
  if (typeof o.promise !== "function" || !(o.isKnown instanceof Promise)) {
    throw new Error("promiseOf/isKnown expect a pulumi.Output (SDK internals changed?)");
  }
  return o as OutputInternals<T>;
}

/** The Output's value. An unknown value (preview) resolves to undefined: check `isKnown`. */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return internals(output).promise();
}

export function isKnown<T>(output: pulumi.Output<T>): Promise<boolean> {
  return internals(output).isKnown;
}

export function isSecret<T>(output: pulumi.Output<T>): Promise<boolean> {
  return pulumi.isSecret(output);
}

/** Waits until every registration/invoke sent so far has been answered (and recorded). */
export function settle(): Promise<void> {
  const settings = require("@pulumi/pulumi/runtime/settings") as SettingsInternals;
  return settings.waitForRPCs();
}
