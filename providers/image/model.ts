import type { Manifest } from "../../decisions/image-hash";
import type { SshConnection } from "../../transport/connection";

/** The validation run of a new container image: started once, probed over HTTP. */
export interface DockerValidateSpec {
  /** Probed from the deploying machine, e.g. "http://127.0.0.1:18650/health". */
  readonly url: string;
  readonly expectStatus: number;
  readonly bodyContains?: string;
  /** Environment of the validation container (a Docker env file: no newlines). */
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly intervalMs: number;
}

/** The DockerImage provider's inputs. Plain data only. */
export interface DockerImageSpec {
  /** The GoldenImage's name: the `io.fleet.image` label retention selects by. */
  readonly name: string;
  /** Local repository for the tags, e.g. "fleet/web". */
  readonly repository: string;
  /** Absolute path of the build context. */
  readonly contextDir: string;
  /** Exclude patterns (source/files.ts), the same the manifest was made with. */
  readonly exclude: readonly string[];
  readonly dockerfile: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Every file of the context, for "which files changed". */
  readonly manifest: Manifest;
  readonly contentHash: string;
  /** The commit the context was last changed in ("" outside git). A tag, never a rebuild trigger. */
  readonly commit: string;
  /** DOCKER_HOST of the build engine; "" for the local CLI's default. */
  readonly dockerHost: string;
  readonly validate: DockerValidateSpec;
  /** Hosts the image is shipped to (a secret input), and their addresses in plain text (for preview). */
  readonly hostConnections: readonly SshConnection[];
  readonly hostAddresses: readonly string[];
  /** Images kept per engine and host, counting the active one. */
  readonly keep: number;
  readonly stepTimeoutMs: number;
}

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
