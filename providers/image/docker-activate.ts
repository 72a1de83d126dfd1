import { LABELS, dockerBuildScript, imageTag, inspectImageScript, tagImageCommand } from "../../commands/image";
import { parseFacts } from "../../commands/facts";
import { shortHash } from "../../decisions/image-hash";
import { nextHistory } from "../../decisions/image-retention";
import { remoteStepFailed } from "../../transport/errors";
import { fleetError, summaryOf } from "../../model/errors";
import { packSource } from "../../source/pack";
import { engineName, execLocal, execLocalChecked, runLocalScript } from "./local";
import { enginePlace, ensureImageOnHost, hostPlace, pruneImages } from "./host-images";
import type { DockerImageSpec, DockerImageState, PruneResult, ShipResult } from "./model";
import { runValidation, validationContainer, validationFailure } from "./validate";

/** The tags of an image: the content hash (what it is), then the commit (where it came from), if known. */
export function imageTags(spec: Pick<DockerImageSpec, "repository" | "contentHash" | "commit">): string[] {
  const tags = [imageTag(spec.repository, shortHash(spec.contentHash))];
  if (spec.commit) tags.push(imageTag(spec.repository, spec.commit.replace(/^([0-9a-f]{12})[0-9a-f]*/, "$1")));
  return tags;
}

/** The image with this content hash on the build engine, if it is there: built before, never twice. */
async function findBuilt(spec: DockerImageSpec, tag: string): Promise<string> {
  const out = await runLocalScript(inspectImageScript(tag), {
    step: "inspect",
    dockerHost: spec.dockerHost,
    timeoutMs: spec.stepTimeoutMs,
  });
  const facts = parseFacts(out.stdout).one;
  return facts["image_id"] && facts["hash"] === spec.contentHash ? facts["image_id"] : "";
}

/** `docker build` of the context, streamed as a tar with the manifest's excludes. */
async function build(spec: DockerImageSpec, tags: string[]): Promise<string> {
  const script = dockerBuildScript({
    dockerfile: spec.dockerfile,
    tags,
    buildArgs: spec.buildArgs,
    labels: { [LABELS.image]: spec.name, [LABELS.hash]: spec.contentHash, [LABELS.commit]: spec.commit || "none" },
  });
  const packed = packSource({ kind: "path", path: spec.contextDir, exclude: spec.exclude });
  const [built] = await Promise.all([
    execLocal(script, {
      step: "docker build",
      dockerHost: spec.dockerHost,
      stdin: packed.stream,
      timeoutMs: spec.stepTimeoutMs,
    }),
    packed.done,
  ]);
  const id = parseFacts(built.stdout).one["image_id"] ?? "";
  if (built.code !== 0 || !id) {
    throw remoteStepFailed(
      engineName(spec.dockerHost),
      "docker build",
      `docker build of ${spec.contextDir}`,
      built.code,
      built.stdout,
      built.stderr,
      built.code !== 0 ? `exit code ${built.code}` : "no image id reported",
      [],
    );
  }
  return id;
}

function settledErrors(results: PromiseSettledResult<unknown>[]): string[] {
  return results.flatMap((r) => (r.status === "rejected" ? [summaryOf(r.reason)] : []));
}

/**
 * Builds (only when no image with this content hash exists), validates (unless this very image
 * is already the active one), ships to every host, and only then returns the new state: the one
 * update in which consumers see the new id. Any failure leaves the active image as it was.
 * Retention runs last, on the build engine and every host, and never fails the activation.
 */
export async function activateDockerImage(spec: DockerImageSpec, olds?: DockerImageState): Promise<DockerImageState> {
  const label = `image "${spec.name}" ${shortHash(spec.contentHash)}`;
  const active = olds?.imageId ?? "";
  const tags = imageTags(spec);
  let imageId = await findBuilt(spec, tags[0]!);
  const built = !imageId;
  if (built) imageId = await build(spec, tags);
  else if (tags[1]) {
    await execLocalChecked(tagImageCommand(imageId, tags[1]), {
      step: "tag",
      dockerHost: spec.dockerHost,
      timeoutMs: spec.stepTimeoutMs,
    });
  }

  let validationMs = olds?.validationMs ?? 0;
  if (imageId !== active) {
    const outcome = await runValidation(
      spec.validate,
      imageId,
      validationContainer(spec.name, spec.contentHash),
      spec.dockerHost,
    );
    if (outcome.result !== "ok") {
      throw fleetError(
        "build",
        `[${engineName(spec.dockerHost)}] ${label} (${imageId}): ${validationFailure(spec.validate, outcome)}\n` +
          `The active image (${active || "none"}) stays active; the new one was not shipped to any host.`,
        "Fix the image so that its validation passes (or the validation itself), and deploy again.",
        { host: engineName(spec.dockerHost) },
      );
    }
    validationMs = outcome.ms;
  }

  const shipping = await Promise.allSettled(
    spec.hostConnections.map((conn) =>
      ensureImageOnHost(conn, { imageId, tags, dockerHost: spec.dockerHost, timeoutMs: spec.stepTimeoutMs }),
    ),
  );
  const shipErrors = settledErrors(shipping);
  if (shipErrors.length > 0) {
    throw fleetError(
      "build",
      `${label} (${imageId}) could not be shipped to ${shipErrors.length} of ${spec.hostConnections.length} host(s):\n` +
        shipErrors.join("\n") +
        `\nThe active image (${active || "none"}) stays active; hosts that received the new one keep it until retention removes it.`,
      "Make the hosts reachable (or fix what the errors above show) and deploy again.",
    );
  }
  const shipped = shipping.map((r) => (r as PromiseFulfilledResult<ShipResult>).value);

  const history = nextHistory(olds?.history ?? [], imageId, spec.keep);
  const previousImageId = imageId === active ? (olds?.previousImageId ?? "") : active;
  const pruned = await pruneEverywhere(spec, history, [imageId, previousImageId]);

  return JSON.parse(
    JSON.stringify({
      ...spec,
      imageId,
      ref: tags[0]!,
      tags,
      history,
      previousImageId,
      built,
      builtAt: built ? new Date().toISOString() : (olds?.builtAt ?? new Date().toISOString()),
      validationMs,
      shipped,
      pruned,
    }),
  ) as DockerImageState;
}

/** Retention on the build engine and on every host; a failure is reported, never fatal. */
export async function pruneEverywhere(
  spec: DockerImageSpec,
  history: readonly string[],
  protect: readonly string[],
): Promise<PruneResult[]> {
  const places = [
    enginePlace(spec.dockerHost, spec.stepTimeoutMs),
    ...spec.hostConnections.map((c) => hostPlace(c, spec.stepTimeoutMs)),
  ];
  const args = { name: spec.name, keep: spec.keep, history, protect: protect.filter(Boolean) };
  const results = await Promise.allSettled(places.map((p) => pruneImages(p, args)));
  return results.map((r, i) => {
    if (r.status === "fulfilled") return r.value;
    const where = places[i]!.where;
    const why = summaryOf(r.reason);
    console.error(`[${where}] image retention for "${spec.name}" failed (the images stay): ${why}`);
    return { where, deleted: [], skipped: [`retention failed: ${why.split("\n")[0]}`] };
  });
}
