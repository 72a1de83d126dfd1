import type { SshConnection } from "./connection";

/** Everything a Service needs to make sure a host has the image, and to prune it there. */
export interface ImageArtifact {
  readonly name: string;
  readonly imageId: string;
  readonly tags: readonly string[];
  readonly dockerHost: string;
  readonly keep: number;
  readonly history: readonly string[];
}

/** Images (or snapshots) kept, counting the active one: never fewer than it and the rollback target. */
export const MIN_IMAGES_KEPT = 2;

/** Every file of an image's context: `path → "<kind>:<sha256>"` (decisions/image-hash.ts `Manifest`). */
export type ImageManifest = Readonly<Record<string, string>>;

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
  readonly manifest: ImageManifest;
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

/** The HcloudImage provider's inputs. Plain data only; `token` is a secret input. */
export interface HcloudImageSpec {
  /** The GoldenImage's name: the `fleet.io/image` label retention selects by. */
  readonly name: string;
  readonly baseImage: string;
  readonly serverType: string;
  readonly location: string;
  /** Absolute path of the provision directory (uploaded whole to the builder). */
  readonly provisionDir: string;
  /** Scripts to run, relative to the directory, in order. */
  readonly run: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly manifest: ImageManifest;
  readonly contentHash: string;
  readonly commit: string;
  /** Extra labels on the snapshot. */
  readonly labels: Readonly<Record<string, string>>;
  /** The validation check, run over SSH on a server booted from the new snapshot. */
  readonly check: string;
  readonly checkTimeoutMs: number;
  readonly keep: number;
  readonly stepTimeoutMs: number;
  readonly token: string;
  /** The Hetzner Cloud API ("https://api.hetzner.cloud/v1"); another URL only in tests. */
  readonly apiUrl: string;
  /** The servers' SSH port (22; another only in tests). */
  readonly sshPort: number;
}
