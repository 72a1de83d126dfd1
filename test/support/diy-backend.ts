/**
 * Writes a Pulumi file ("diy") backend's records the way the CLI does (see rollback/history.ts for
 * where each fact was read in pulumi/pulumi): per update, the stack file
 * `.pulumi/stacks/<project>/<stack>.json`, then `.pulumi/history/<project>/<stack>/<stack>-<nanos>.history.json`
 * (compact JSON, Go field order, `version: 0`) and a byte copy of the stack file as
 * `<stack>-<nanos>.checkpoint.json`. Used to build test/fixtures/backend and, in real-server tests,
 * a history of real deploys.
 */
import * as fs from "fs";
import * as path from "path";
import { SERVICE_RELEASE_TYPE } from "../../rollback/history";

type Json = Record<string, unknown>;

export interface UpdateRecord {
  readonly kind: string;
  readonly startTime: number;
  readonly message: string;
  readonly environment: Record<string, string>;
  readonly config: Json;
  readonly result: "succeeded" | "failed";
  readonly endTime: number;
  readonly resourceChanges?: Record<string, number>;
}

/**
 * A ServiceRelease as the engine records it (Stack → Service component → dynamic resource).
 * `resource` is the Service component's name: the service, or `<service>@<host>` on several hosts.
 * The URN's type chain leaves out the root Stack's type, as the engine does (generateURN).
 */
export function serviceReleaseResource(
  stack: string,
  project: string,
  resource: string,
  id: string,
  inputs: Json,
  outputs: Json,
): Json {
  const prefix = `urn:pulumi:${stack}::${project}::fleet:index:Service`;
  return {
    urn: `${prefix}$${SERVICE_RELEASE_TYPE}::${resource}-release`,
    custom: true,
    id,
    type: SERVICE_RELEASE_TYPE,
    inputs,
    outputs,
    parent: `${prefix}::${resource}`,
    provider: `urn:pulumi:${stack}::${project}::pulumi:providers:pulumi-nodejs::default::00000000-0000-0000-0000-000000000000`,
    additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"],
  };
}

/** The versioned checkpoint (apitype.VersionedCheckpoint of a CheckpointV3) for these resources. */
export function versionedCheckpoint(stack: string, project: string, time: string, resources: Json[]): Json {
  return {
    version: 3,
    checkpoint: {
      stack: `organization/${project}/${stack}`,
      latest: {
        manifest: {
          time,
          magic: "0000000000000000000000000000000000000000000000000000000000000000",
          version: "v3.265.0",
        },
        secrets_providers: {
          type: "passphrase",
          state: { salt: "v1:AAAAAAAAAAA=:v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
        },
        resources,
      },
    },
  };
}

/** Records one update: the new stack file, then its history entry and checkpoint copy. */
export function writeUpdate(
  backendDir: string,
  project: string,
  stack: string,
  nanos: string,
  info: UpdateRecord,
  checkpoint: Json,
): void {
  const root = path.join(backendDir, ".pulumi");
  const stackFile = path.join(root, "stacks", project, `${stack}.json`);
  const historyDir = path.join(root, "history", project, stack);
  fs.mkdirSync(path.dirname(stackFile), { recursive: true });
  fs.mkdirSync(historyDir, { recursive: true });
  if (!fs.existsSync(path.join(root, "meta.yaml"))) fs.writeFileSync(path.join(root, "meta.yaml"), "version: 1\n");
  fs.writeFileSync(stackFile, JSON.stringify(checkpoint));
  const record = {
    kind: info.kind,
    startTime: info.startTime,
    message: info.message,
    environment: info.environment,
    config: info.config,
    version: 0,
    result: info.result,
    endTime: info.endTime,
    ...(info.resourceChanges ? { resourceChanges: info.resourceChanges } : {}),
  };
  fs.writeFileSync(path.join(historyDir, `${stack}-${nanos}.history.json`), JSON.stringify(record));
  fs.copyFileSync(stackFile, path.join(historyDir, `${stack}-${nanos}.checkpoint.json`));
}

/**
 * Records a simulated resource's current state as one successful `pulumi up` of `stack`
 * (history entry + checkpoint), as the file backend would. `sequence` keeps same-millisecond
 * updates in order.
 */
export function recordSuccessfulUpdate(
  backendDir: string,
  stack: string,
  service: string,
  plainStateJson: string,
  message: string,
  gitHead: string,
  sequence: number,
): void {
  const stored = (JSON.parse(plainStateJson) as { resources: Json[] }).resources;
  const now = Date.now();
  const resources = stored
    .filter((r) => r["delete"] !== true)
    .map((r) =>
      serviceReleaseResource(stack, "fleet", service, String(r["id"]), r["inputs"] as Json, r["outputs"] as Json),
    );
  writeUpdate(
    backendDir,
    "fleet",
    stack,
    `${BigInt(now) * 1_000_000n + BigInt(sequence)}`,
    {
      kind: "update",
      startTime: Math.floor(now / 1000),
      message,
      environment: { "git.head": gitHead },
      config: {},
      result: "succeeded",
      endTime: Math.floor(now / 1000),
    },
    versionedCheckpoint(stack, "fleet", new Date(now).toISOString(), resources),
  );
}
