import type * as pulumi from "@pulumi/pulumi";
import { inspectImageScript } from "../../commands/image";
import { parseFacts } from "../../commands/facts";
import { changedFiles, describeChanges } from "../../decisions/image-changes";
import { UNKNOWN, canonical } from "../../decisions/diff-keys";
import { checkDockerImageInputs } from "./check";
import { activateDockerImage, pruneEverywhere } from "./docker-activate";
import { runLocalScript } from "./local";
import type { DockerImageSpec, DockerImageState } from "./model";

/** Where each host is: address, port and user (a rotated key is no reason to ship again). */
function hostTargets(spec: Pick<DockerImageSpec, "hostConnections"> | undefined): unknown {
  const conns: unknown = spec?.hostConnections ?? [];
  if (!Array.isArray(conns)) return conns; // unknown during preview
  return conns.map((c: unknown) => {
    if (c === null || typeof c !== "object") return c; // unknown during preview
    const { host, port, user } = c as { host: string; port?: number; user: string };
    return { host, port: port ?? 22, user };
  });
}

function changed(a: unknown, b: unknown): boolean {
  return canonical(a) !== canonical(b) || JSON.stringify(b ?? null).includes(UNKNOWN);
}

/**
 * What an update would do, for preview: nothing when the content hash, the build engine, the
 * repository, the hosts and the policy are unchanged (a new commit alone builds nothing);
 * otherwise which files changed and where the image goes. Only a new name (the label retention
 * selects by) is a replacement: replacing for anything else would let the old resource's delete
 * prune the new one's images, which carry the same label.
 */
export function diffDockerImage(olds: DockerImageState, news: DockerImageSpec) {
  const replaces = changed(olds.name, news.name) ? ["name"] : [];
  const rebuild =
    changed(olds.contentHash, news.contentHash) ||
    changed(olds.repository, news.repository) ||
    changed(olds.dockerHost, news.dockerHost);
  const reship = changed(hostTargets(olds), hostTargets(news)) || changed(olds.hostAddresses, news.hostAddresses);
  const changes = replaces.length > 0 || rebuild || reship || changed(olds.keep, news.keep);
  const hosts = Array.isArray(news.hostAddresses) ? news.hostAddresses.join(", ") || "no host" : "the hosts";
  let summary = "";
  if (changed(olds.contentHash, news.contentHash) && news.manifest && typeof news.manifest === "object") {
    summary = `${describeChanges(changedFiles(olds.manifest, news.manifest))}; it will be built, validated and shipped to ${hosts}`;
  } else if (rebuild)
    summary = `another build engine or repository; it will be built, validated and shipped to ${hosts}`;
  else if (reship) summary = `ships to ${hosts}`;
  return { changes, replaces, summary };
}

/**
 * The DockerImage dynamic provider: a container image built by the Docker CLI on the deploying
 * machine (or DOCKER_HOST) only when its content hash changes, validated by running it once,
 * shipped to hosts without a registry, retained by policy. Thin: the steps live in
 * docker-activate.ts, the scripts in commands/image.ts, the decisions in decisions/image-*.ts.
 */
export const dockerImageProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: checkDockerImageInputs(news) };
  },

  async diff(_id: string, olds: DockerImageState, news: DockerImageSpec) {
    const d = diffDockerImage(olds, news);
    // No detailed diff reaches the engine from a dynamic provider: say it in the log instead.
    if (d.summary) console.log(`fleet: image "${news.name}": ${d.summary}`);
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: false };
  },

  async create(inputs: DockerImageSpec) {
    return { id: `image:${inputs.name}`, outs: await activateDockerImage(inputs) };
  },

  async update(_id: string, olds: DockerImageState, news: DockerImageSpec) {
    return { outs: await activateDockerImage(news, olds) };
  },

  /** `pulumi refresh`: an image gone from the build engine shows as drift, and the next update rebuilds it. */
  async read(id: string, props: DockerImageState) {
    const out = await runLocalScript(inspectImageScript(props.ref), {
      step: "inspect",
      dockerHost: props.dockerHost,
      timeoutMs: props.stepTimeoutMs,
    });
    const live = parseFacts(out.stdout).one["image_id"] ?? "";
    if (live === props.imageId) return { id, props };
    // The recorded image id stays: it is still the active one on the hosts, and the rollback target
    // of the rebuild the next update will do.
    return { id, props: { ...props, contentHash: `drift: ${props.ref} is ${live || "missing"} on the build engine` } };
  },

  /** Removes this image's copies that nothing uses; in-use and unit-referenced images stay. */
  async delete(_id: string, props: DockerImageState) {
    await pruneEverywhere(props, [], []);
  },
};
