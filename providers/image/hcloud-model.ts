import type { Manifest } from "../../decisions/image-hash";

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
  readonly manifest: Manifest;
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

export interface HcloudImageState extends HcloudImageSpec {
  /** The active snapshot's id. */
  readonly imageId: string;
  readonly previousImageId: string;
  /** Activated snapshots, newest first. */
  readonly history: string[];
  readonly builtAt: string;
  /** Snapshots retention deleted in this update. */
  readonly pruned: string[];
}

/** Labels fleet sets on what it creates in Hetzner Cloud (values are at most 63 characters). */
export const HCLOUD_LABELS = {
  image: "fleet.io/image",
  hash: "fleet.io/hash",
  commit: "fleet.io/commit",
  role: "fleet.io/role",
  validated: "fleet.io/validated",
} as const;
