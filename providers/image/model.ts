import type { DockerImageSpec } from "../../model/image";

// The provider's inputs are model types: model/image-spec.ts checks them with the config's rules.
export type { DockerImageSpec, DockerValidateSpec } from "../../model/image";

/** What a host reported when the image was shipped. */
export interface ShipResult {
  readonly host: string;
  /** "present": it already had the image; "loaded": streamed in with docker load. */
  readonly action: "present" | "loaded";
  readonly ms: number;
}

/** What retention did on one engine or host. */
export interface PruneResult {
  readonly where: string;
  readonly deleted: string[];
  readonly skipped: string[];
}

export interface DockerImageState extends DockerImageSpec {
  /** The active image: `sha256:…`, the same on the build engine and every host. */
  readonly imageId: string;
  /** `repository:<hash16>`. */
  readonly ref: string;
  readonly tags: string[];
  /** Activated images, newest first (the active one, then the rollback target). */
  readonly history: string[];
  readonly previousImageId: string;
  /** Whether the last activation had to build (false: the image with this hash was still there). */
  readonly built: boolean;
  readonly builtAt: string;
  readonly validationMs: number;
  readonly shipped: ShipResult[];
  readonly pruned: PruneResult[];
}

// A Service's source when it runs an image: a model type, since model/service.ts names it.
export type { ImageArtifact } from "../../model/image";
