import { MIN_IMAGES_KEPT } from "../model/image";

/**
 * Image and snapshot retention. Images are ranked by activation (the order in which they passed
 * validation and became the active image), never by creation time: an image that failed
 * validation is the newest one on the engine, and must be the first to go, not the last.
 */

export interface ImageRetentionPolicy {
  /** Images kept, counting the active one. Never fewer than 2: the active one and the rollback target. */
  readonly keep: number;
  /** Activated images, newest first: `history[0]` is active, `history[1]` the rollback target. */
  readonly history: readonly string[];
  /** Never deleted whatever the policy says: in use by a container, named by a unit, or by the caller. */
  readonly protect: readonly string[];
}

/** The floor of `keep`: the active image and the one a rollback goes back to (the config's floor too). */
export const MIN_KEEP = MIN_IMAGES_KEPT;

/** The activation history after `activated` became active, trimmed to what retention keeps. */
export function nextHistory(history: readonly string[], activated: string, keep: number): string[] {
  return [activated, ...history.filter((id) => id !== activated)].slice(0, Math.max(keep, MIN_KEEP));
}

/**
 * Which of the `present` images (those of one GoldenImage on one engine, host or project) to
 * delete: everything but the `keep` most recently activated and the protected ones. Images that
 * never became active (failed validation, superseded builds) are deleted unless protected.
 */
export function imagesToDelete(present: readonly string[], policy: ImageRetentionPolicy): string[] {
  const kept = new Set([...policy.history.slice(0, Math.max(policy.keep, MIN_KEEP)), ...policy.protect]);
  return [...new Set(present)].filter((id) => !kept.has(id));
}
