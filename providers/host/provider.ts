import type * as pulumi from "@pulumi/pulumi";
import type { BootstrapSpec, HostFacts } from "../../model/host";
import type { SshConnection } from "../../transport/connection";
import { bootstrapScript, factsScript } from "../../commands/host";
import { parseFacts } from "../../commands/facts";
import { diffHostBootstrap } from "../../decisions/host-diff";
import { runScript } from "../../transport/ssh";

/** The HostBootstrap provider's inputs: plain data (the connection is a secret input). */
export interface HostBootstrapSpec {
  readonly connection: SshConnection;
  /** The address in plain text, for preview and messages. */
  readonly host: string;
  /** What the host gets: preview --diff shows its changes; the provider renders the script. */
  readonly bootstrap: BootstrapSpec;
  /** The spec's hash, recorded on the host: a change re-runs the bootstrap. */
  readonly scriptSha: string;
  /** How long to wait for SSH to answer (a new server boots first), in ms. */
  readonly readyTimeoutMs: number;
  readonly stepTimeoutMs: number;
}

export interface HostBootstrapState extends HostBootstrapSpec {
  readonly facts: HostFacts;
  /** What the last run changed: empty when the host already was as bootstrapped. */
  readonly changed: string[];
  readonly bootstrappedAt: string;
}

function readFacts(stdout: string): { facts: HostFacts; bootstrapSha: string } {
  const f = parseFacts(stdout).one;
  return {
    facts: {
      os: f["os"] ?? "",
      osId: f["os_id"] ?? "",
      osVersion: f["os_version"] ?? "",
      arch: f["arch"] ?? "",
      systemd: f["systemd"] ?? "",
      diskFreeMb: Number(f["disk_free_mb"] ?? 0),
      memoryMb: Number(f["memory_mb"] ?? 0),
    },
    bootstrapSha: f["bootstrap_sha"] ?? "",
  };
}

/** Bootstraps (waiting for SSH first, within readyTimeoutMs), then reads the facts. */
async function bootstrapHost(spec: HostBootstrapSpec): Promise<HostBootstrapState> {
  const secrets = [spec.connection.privateKey];
  // A new server may not answer yet: the transport retries refused/timed-out connects until this deadline.
  const waiting = {
    ...spec.connection,
    connectTimeoutMs: Math.max(spec.readyTimeoutMs, spec.connection.connectTimeoutMs ?? 0),
  };
  const ran = await runScript(waiting, bootstrapScript(spec.bootstrap, spec.scriptSha), {
    step: "bootstrap",
    secrets,
    timeoutMs: spec.stepTimeoutMs,
  });
  const changed = parseFacts(ran.stdout).all["changed"] ?? [];
  const read = await runScript(spec.connection, factsScript(spec.bootstrap.root), { step: "facts", secrets });
  return JSON.parse(
    JSON.stringify({
      ...withoutScript(spec),
      facts: readFacts(read.stdout).facts,
      changed,
      bootstrappedAt: new Date().toISOString(),
    }),
  ) as HostBootstrapState;
}

/** A spec without the rendered script that inputs held before (docs/state.md: ~4 KB each). */
function withoutScript<T extends object>(props: T): T {
  const rest: T & { script?: unknown } = { ...props };
  delete rest.script;
  return rest;
}

/**
 * Bootstraps an existing or new host over fleet's own transport rather than @pulumi/command's
 * remote.Command: it pins the host key (remote.Command accepts any), shares the one pooled
 * connection per host, waits for a booting server within a bound, and reports the failing step.
 * Re-runs only when the bootstrap script changes; `read` reports facts and drift.
 */
export const hostBootstrapProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: HostBootstrapState, news: HostBootstrapSpec) {
    const { changes, replaces } = diffHostBootstrap(olds, news);
    return { changes, replaces };
  },

  async create(inputs: HostBootstrapSpec) {
    const outs = await bootstrapHost(inputs);
    return { id: `${inputs.connection.host}:${inputs.connection.port ?? 22}`, outs };
  },

  async update(_id: string, olds: HostBootstrapState, news: HostBootstrapSpec) {
    // Only the stored script to drop: recorded, nothing runs on the host.
    if (diffHostBootstrap(olds, news).recordOnly) return { outs: withoutScript({ ...olds, ...news }) };
    return { outs: await bootstrapHost(news) };
  },

  /** `pulumi refresh`: fresh facts; a different bootstrap marker on the host shows as drift. */
  async read(id: string, props: HostBootstrapState) {
    const read = await runScript(props.connection, factsScript(props.bootstrap.root), {
      step: "facts",
      secrets: [props.connection.privateKey],
    });
    const { facts, bootstrapSha } = readFacts(read.stdout);
    return { id, props: { ...props, facts, scriptSha: bootstrapSha || "not-bootstrapped" } };
  },

  /** Nothing is undone on the machine: a bootstrapped host stays usable after fleet lets go of it. */
  async delete() {
    return;
  },
};
