import {
  dockerSaveCommand,
  imageLoadCommand,
  imagePresenceScript,
  listImagesScript,
  removeImagesScript,
} from "../../commands/image";
import { parseFacts } from "../../commands/facts";
import { imagesToDelete } from "../../decisions/image-retention";
import { remoteStepFailed } from "../../transport/errors";
import type { SshConnection } from "../../transport/connection";
import { connectionKey, exec, runScript, type ExecResult } from "../../transport/ssh";
import { engineName, runLocalScript, streamLocal } from "./local";
import type { PruneResult, ShipResult } from "./model";

/**
 * Images on hosts (over the fleet connection) and on the build engine (the local Docker CLI):
 * shipping without a registry, and retention. Also what a Service running an image uses (see
 * the integration notes in components/golden-image.ts).
 */

/** Somewhere scripts run: a host over SSH, or the build engine on this machine. */
export interface ScriptPlace {
  readonly where: string;
  readonly runScript: (script: string, step: string) => Promise<ExecResult>;
}

export function hostPlace(conn: SshConnection, timeoutMs: number): ScriptPlace {
  return {
    where: connectionKey(conn),
    runScript: (script, step) => runScript(conn, script, { step, timeoutMs, secrets: [conn.privateKey] }),
  };
}

export function enginePlace(dockerHost: string, timeoutMs: number): ScriptPlace {
  return {
    where: engineName(dockerHost),
    runScript: (script, step) => runLocalScript(script, { step, dockerHost, timeoutMs }),
  };
}

export interface ShipArgs {
  readonly imageId: string;
  /** Saved with the image, so it arrives tagged (an untagged image would look dangling). */
  readonly tags: readonly string[];
  /** Where the image is saved from. */
  readonly dockerHost: string;
  readonly timeoutMs: number;
}

/**
 * Makes sure the host has the image: one round trip when it does; otherwise `docker save` on this
 * machine streamed over the host's pooled SSH connection into `docker load`, and proof that the
 * expected id arrived. No registry, no temporary file on either side.
 */
export async function ensureImageOnHost(conn: SshConnection, args: ShipArgs): Promise<ShipResult> {
  const started = Date.now();
  const host = connectionKey(conn);
  const secrets = [conn.privateKey];
  const probe = await runScript(conn, imagePresenceScript(args.imageId), {
    step: "image presence",
    secrets,
    timeoutMs: args.timeoutMs,
  });
  if (parseFacts(probe.stdout).one["present"] === "1")
    return { host: conn.host, action: "present", ms: Date.now() - started };
  const saved = streamLocal(dockerSaveCommand(args.tags), args.dockerHost, "docker save");
  const load = imageLoadCommand(args.imageId, conn.user);
  const [loaded] = await Promise.all([
    exec(conn, load, { step: "docker load", stdin: saved.stream, secrets, timeoutMs: args.timeoutMs }),
    saved.done,
  ]);
  const got = parseFacts(loaded.stdout).one["loaded"] ?? "";
  if (loaded.code !== 0 || got !== args.imageId) {
    throw remoteStepFailed(
      host,
      "docker load",
      load,
      loaded.code,
      loaded.stdout,
      loaded.stderr,
      loaded.code !== 0 ? `exit code ${loaded.code}` : `expected ${args.imageId} after the load, found "${got}"`,
      secrets,
    );
  }
  return { host: conn.host, action: "loaded", ms: Date.now() - started };
}

export interface PruneArgs {
  /** The GoldenImage name (label `io.fleet.image`). */
  readonly name: string;
  readonly keep: number;
  /** Activated images, newest first. */
  readonly history: readonly string[];
  /** Ids the caller needs kept (a service's serving image and its rollback target). */
  readonly protect: readonly string[];
}

/**
 * Retention in one place: lists this image's copies and what protects them right now, decides
 * (decisions/image-retention.ts), and deletes, re-checking each image's protection on the spot.
 */
export async function pruneImages(place: ScriptPlace, args: PruneArgs): Promise<PruneResult> {
  const listed = parseFacts((await place.runScript(listImagesScript(args.name), "list images")).stdout).all;
  const protect = [...args.protect, ...(listed["in_use"] ?? []), ...(listed["referenced"] ?? [])];
  const doomed = imagesToDelete(listed["image"] ?? [], { keep: args.keep, history: args.history, protect });
  if (doomed.length === 0) return { where: place.where, deleted: [], skipped: [] };
  const removed = parseFacts((await place.runScript(removeImagesScript(doomed, protect), "prune images")).stdout).all;
  return { where: place.where, deleted: removed["deleted"] ?? [], skipped: removed["skipped"] ?? [] };
}
