/** Everything a Service needs to make sure a host has the image, and to prune it there. */
export interface ImageArtifact {
  readonly name: string;
  readonly imageId: string;
  readonly tags: readonly string[];
  readonly dockerHost: string;
  readonly keep: number;
  readonly history: readonly string[];
}
