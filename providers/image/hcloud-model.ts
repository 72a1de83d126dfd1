import type { HcloudImageSpec } from "../../model/image";

// The provider's inputs are a model type: model/image-spec.ts checks them with the config's rules.
export type { HcloudImageSpec } from "../../model/image";

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
