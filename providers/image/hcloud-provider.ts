import type * as pulumi from "@pulumi/pulumi";
import { generateEd25519 } from "../../transport/keys";
import { provisionUploadCommand } from "../../commands/image-provision";
import { changedFiles, describeChanges } from "../../decisions/image-changes";
import { remoteStepFailed } from "../../transport/errors";
import type { SshConnection } from "../../transport/connection";
import { connectionKey, exec, runScript } from "../../transport/ssh";
import { packSource } from "../../source/pack";
import { checkHcloudImageInputs } from "./check";
import { hcloudApi } from "./hcloud-api";
import { buildHcloudImage, pruneSnapshots, type HcloudBuildDeps } from "./hcloud-build";
import type { HcloudImageSpec, HcloudImageState } from "./hcloud-model";

/** The real outside world: Hetzner's API, fleet's SSH transport, ssh2's key generator. */
export function hcloudDeps(spec: Pick<HcloudImageSpec, "token" | "apiUrl">, pollMs = 2000): HcloudBuildDeps {
  return {
    api: hcloudApi(spec.token, spec.apiUrl, pollMs),
    shell: (conn, script, step, timeoutMs) =>
      runScript(conn, script, { step, timeoutMs, secrets: [conn.privateKey] }, false),
    upload: (conn, dir, timeoutMs) => uploadDir(conn, dir, timeoutMs),
    keyPair: () => {
      const pair = generateEd25519("fleet-image-build");
      return { privateKey: pair.private, publicKey: pair.public.trim().split(/\s+/).slice(0, 2).join(" ") };
    },
    readyTimeoutMs: 5 * 60_000,
    shutdownTimeoutMs: 2 * 60_000,
    pollMs,
  };
}

/** The provision directory, tar.gz over the pooled connection, unpacked on the builder. */
async function uploadDir(conn: SshConnection, dir: string, timeoutMs: number): Promise<void> {
  const packed = packSource({ kind: "path", path: dir, exclude: [".git"] });
  const command = provisionUploadCommand(conn.user);
  const [r] = await Promise.all([
    exec(conn, command, { step: "upload provision", stdin: packed.stream, timeoutMs }),
    packed.done,
  ]);
  if (r.code !== 0)
    throw remoteStepFailed(
      connectionKey(conn),
      "upload provision",
      command,
      r.code,
      r.stdout,
      r.stderr,
      `exit code ${r.code}`,
      [conn.privateKey],
    );
}

/**
 * The HcloudImage dynamic provider: Packer's hcloud builder as one resource (see hcloud-build.ts).
 * Rebuilds only when the content hash changes; a new keep only re-runs retention.
 */
export const hcloudImageProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: checkHcloudImageInputs(news) };
  },

  async diff(_id: string, olds: HcloudImageState, news: HcloudImageSpec) {
    const rebuild = olds.contentHash !== news.contentHash;
    const replaces = olds.name !== news.name ? ["name"] : [];
    if (rebuild && news.manifest && typeof news.manifest === "object")
      console.log(
        `fleet: image "${news.name}": ${describeChanges(changedFiles(olds.manifest, news.manifest))}; a new snapshot will be built and validated`,
      );
    return { changes: rebuild || replaces.length > 0 || olds.keep !== news.keep, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: HcloudImageSpec) {
    const outs = await buildHcloudImage(inputs, undefined, hcloudDeps(inputs));
    return { id: `hcloud-image:${inputs.name}`, outs };
  },

  async update(_id: string, olds: HcloudImageState, news: HcloudImageSpec) {
    if (olds.contentHash === news.contentHash) {
      const pruned = await pruneSnapshots(hcloudDeps(news).api, news, olds.history, [
        olds.imageId,
        olds.previousImageId,
      ]);
      return { outs: { ...olds, ...news, imageId: olds.imageId, pruned } };
    }
    return { outs: await buildHcloudImage(news, olds, hcloudDeps(news)) };
  },

  /** `pulumi refresh`: a snapshot deleted behind fleet's back shows as drift and is rebuilt by the next update. */
  async read(id: string, props: HcloudImageState) {
    if (await hcloudDeps(props).api.imageExists(props.imageId)) return { id, props };
    return { id, props: { ...props, contentHash: "missing-in-hetzner-cloud" } };
  },

  /** Deletes this image's snapshots, except any a server was created from. */
  async delete(_id: string, props: HcloudImageState) {
    await pruneSnapshots(hcloudDeps(props).api, { name: props.name, keep: 0 }, [], []);
  },
};
