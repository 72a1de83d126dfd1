import { cloudInitUserData } from "../../commands/cloud-init";
import { generalizeScript, imageCheckScript, provisionScript } from "../../commands/image-provision";
import { shortHash } from "../../decisions/image-hash";
import { imagesToDelete, nextHistory } from "../../decisions/image-retention";
import type { SshConnection } from "../../transport/connection";
import type { ExecResult } from "../../transport/ssh";
import { redact, tail } from "../../transport/redact";
import { waitForServer, type HcloudApi } from "./hcloud-api";
import { HCLOUD_LABELS, type HcloudImageSpec, type HcloudImageState } from "./hcloud-model";
import { withCleanup } from "./errors";
import { fleetError, summaryOf } from "../../model/errors";

/** What the orchestration needs from the outside world; tests hand in fakes. */
export interface HcloudBuildDeps {
  readonly api: HcloudApi;
  /** Runs a script over SSH and resolves with its result whatever the exit code. */
  readonly shell: (conn: SshConnection, script: string, step: string, timeoutMs: number) => Promise<ExecResult>;
  /** Unpacks the provision directory on the builder. */
  readonly upload: (conn: SshConnection, dir: string, timeoutMs: number) => Promise<void>;
  /** A fresh ed25519 key pair (OpenSSH private key, "ssh-ed25519 AAAA…" public key). */
  readonly keyPair: () => { privateKey: string; publicKey: string };
  /** How long a new server may take to answer SSH. */
  readonly readyTimeoutMs: number;
  /** How long a graceful shutdown may take before the builder's power is cut. */
  readonly shutdownTimeoutMs: number;
  readonly pollMs: number;
}

/** Server names, unique per attempt. */
function attemptTag(spec: HcloudImageSpec): string {
  const crypto = require("crypto") as typeof import("crypto");
  const name = spec.name.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  return `${name}-${spec.contentHash.slice(0, 8)}-${crypto.randomBytes(3).toString("hex")}`;
}

function baseLabels(spec: HcloudImageSpec): Record<string, string> {
  return { [HCLOUD_LABELS.image]: spec.name, [HCLOUD_LABELS.hash]: shortHash(spec.contentHash) };
}

/** Fails with the step, the exit code and the output's tail, secrets redacted. */
function checked(r: ExecResult, where: string, step: string, secrets: string[]): ExecResult {
  if (r.code === 0) return r;
  const out = redact(tail(`${r.stderr}\n${r.stdout}`, 40), secrets);
  throw fleetError(
    "build",
    `[${where}] ${step} failed with exit code ${r.code}:\n${out
      .split("\n")
      .map((l) => `    ${l}`)
      .join("\n")}`,
    "Fix what the output shows (the image's provision script or the builder) and deploy again; the active snapshot stays active.",
    { host: where, step, exitCode: r.code },
  );
}

/**
 * A server from `image`, reached over SSH with the temporary login key and a host key made here
 * (injected by cloud-init, so it is pinned before the first connection). Always deleted after
 * `use`, whatever happens; a failed delete is reported with the server's id (it costs money).
 */
async function withServer<T>(
  spec: HcloudImageSpec,
  deps: HcloudBuildDeps,
  role: string,
  name: string,
  image: string,
  sshKeyId: number,
  login: { privateKey: string },
  use: (conn: SshConnection, serverId: number) => Promise<T>,
): Promise<T> {
  const hostKey = deps.keyPair();
  const server = await deps.api.createServer({
    name,
    serverType: spec.serverType,
    location: spec.location,
    image,
    sshKeys: [sshKeyId],
    userData: cloudInitUserData(hostKey.privateKey, hostKey.publicKey),
    labels: { ...baseLabels(spec), [HCLOUD_LABELS.role]: role },
  });
  return withCleanup(
    async () => {
      await waitForServer(deps.api, server.id, "running", deps.readyTimeoutMs, deps.pollMs);
      const conn: SshConnection = {
        host: server.ipv4,
        port: spec.sshPort,
        user: "root",
        privateKey: login.privateKey,
        hostKey: hostKey.publicKey,
        connectTimeoutMs: deps.readyTimeoutMs,
      };
      return use(conn, server.id);
    },
    () => deps.api.deleteServer(server.id),
    `deleting the ${role} server ${server.id} (${name}; it costs money: delete it by hand)`,
  );
}

/** Builder steps 3-5: upload and provision, generalize, shut down, snapshot (labelled, not yet validated). */
async function provisionAndSnapshot(
  spec: HcloudImageSpec,
  deps: HcloudBuildDeps,
  conn: SshConnection,
  serverId: number,
  loginPublicKey: string,
  secrets: string[],
): Promise<string> {
  const { api } = deps;
  await deps.upload(conn, spec.provisionDir, spec.stepTimeoutMs);
  const script = provisionScript({ run: spec.run, env: spec.env, imageName: spec.name, contentHash: spec.contentHash });
  checked(await deps.shell(conn, script, "provision", spec.stepTimeoutMs), `builder ${serverId}`, "provision", secrets);
  const generalize = generalizeScript("/", [loginPublicKey]);
  checked(await deps.shell(conn, generalize, "generalize", 60_000), `builder ${serverId}`, "generalize", secrets);
  await api.waitAction(await api.shutdown(serverId), deps.shutdownTimeoutMs);
  await waitForServer(api, serverId, "off", deps.shutdownTimeoutMs, deps.pollMs).catch(async () => {
    await api.waitAction(await api.poweroff(serverId), deps.shutdownTimeoutMs);
  });
  const snap = await api.createSnapshot(
    serverId,
    `fleet ${spec.name} ${shortHash(spec.contentHash)}`,
    snapshotLabels(spec, false),
  );
  await api.waitAction(snap.actionId, spec.stepTimeoutMs);
  return snap.imageId;
}

function snapshotLabels(spec: HcloudImageSpec, validated: boolean): Record<string, string> {
  return {
    ...spec.labels,
    ...baseLabels(spec),
    [HCLOUD_LABELS.commit]: spec.commit.slice(0, 12) || "none",
    [HCLOUD_LABELS.validated]: String(validated),
  };
}

/**
 * Packer's hcloud flow, then validation, in one update: (1) temporary SSH key; (2) builder from
 * the base image; (3) provision over SSH, generalize; (4) shutdown (power off if it will not);
 * (5) snapshot labelled with the content hash; (6) builder deleted; (7) a throwaway server from the
 * snapshot must pass the check, then is deleted; (8) key deleted; (9) the snapshot is marked
 * validated and becomes active; older ones go by retention. Failures leave the active snapshot
 * as it was; an unvalidated snapshot stays (labelled) for inspection until the next retention.
 */
export async function buildHcloudImage(
  spec: HcloudImageSpec,
  olds: HcloudImageState | undefined,
  deps: HcloudBuildDeps,
): Promise<HcloudImageState> {
  const { api } = deps;
  const tag = attemptTag(spec);
  const login = deps.keyPair();
  const secrets = [login.privateKey, spec.token];
  const keyId = await api.createSshKey(`fleet-build-${tag}`, login.publicKey, {
    ...baseLabels(spec),
    [HCLOUD_LABELS.role]: "builder",
  });
  const snapshot = await withCleanup(
    async () => {
      const id = await withServer(
        spec,
        deps,
        "builder",
        `fleet-build-${tag}`,
        spec.baseImage,
        keyId,
        login,
        (conn, serverId) => provisionAndSnapshot(spec, deps, conn, serverId, login.publicKey, secrets),
      );
      await withServer(spec, deps, "validator", `fleet-check-${tag}`, id, keyId, login, async (conn, serverId) => {
        const result = await deps.shell(
          conn,
          imageCheckScript(spec.check, spec.contentHash),
          "validate",
          spec.checkTimeoutMs,
        );
        if (result.code !== 0) {
          const evidence = redact(tail(`${result.stderr}\n${result.stdout}`, 40), secrets);
          throw fleetError(
            "build",
            `image "${spec.name}" ${shortHash(spec.contentHash)}: snapshot ${id} failed validation on server ${serverId} (exit code ${result.code}):\n` +
              evidence
                .split("\n")
                .map((l) => `    ${l}`)
                .join("\n") +
              `\nThe active snapshot (${olds?.imageId || "none"}) stays active; ${id} is kept, labelled ${HCLOUD_LABELS.validated}=false, until the next retention.`,
            "Fix the image's provision script or its check so that the check passes, and deploy again.",
            { exitCode: result.code },
          );
        }
      });
      return id;
    },
    () => api.deleteSshKey(keyId),
    `deleting the temporary SSH key ${keyId}`,
  );
  await api.setImageLabels(snapshot, snapshotLabels(spec, true));
  const history = nextHistory(olds?.history ?? [], snapshot, spec.keep);
  const previousImageId = olds?.imageId ?? "";
  const pruned = await pruneSnapshots(api, spec, history, [snapshot, previousImageId]);
  return JSON.parse(
    JSON.stringify({ ...spec, imageId: snapshot, previousImageId, history, builtAt: new Date().toISOString(), pruned }),
  ) as HcloudImageState;
}

/** Snapshot retention: the policy's decision, minus any snapshot a server was created from. A failure only warns. */
export async function pruneSnapshots(
  api: HcloudApi,
  spec: Pick<HcloudImageSpec, "name" | "keep">,
  history: readonly string[],
  protect: readonly string[],
): Promise<string[]> {
  try {
    const present = (await api.listSnapshots(`${HCLOUD_LABELS.image}=${spec.name}`)).map((s) => s.id);
    const inUse = await api.imagesInUse();
    const doomed = imagesToDelete(present, {
      keep: spec.keep,
      history,
      protect: [...protect.filter(Boolean), ...inUse],
    });
    for (const id of doomed) await api.deleteImage(id);
    return doomed;
  } catch (e) {
    console.error(`snapshot retention for "${spec.name}" failed (the snapshots stay): ${summaryOf(e)}`);
    return [];
  }
}
