import { createHash } from "crypto";
import type { TreeEntry } from "./release-id";

/**
 * What an image is built from, file by file: `path → "<kind>:<sha256>"` (kind `f` file, `x`
 * executable file, `l` symlink). Kept in state, so the next preview can say which files changed.
 */
export type Manifest = Readonly<Record<string, string>>;

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The manifest of a tree (see source/resolve.ts `walkTree`): order and mtimes never matter. */
export function manifestOf(entries: readonly TreeEntry[]): Manifest {
  const manifest: Record<string, string> = {};
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const kind = e.kind === "symlink" ? "l" : e.executable ? "x" : "f";
    manifest[e.path] = `${kind}:${sha256(e.content)}`;
  }
  return manifest;
}

export interface ImageInputs {
  /** "docker" or "hcloud": the same files built as another kind are another image. */
  readonly kind: string;
  readonly manifest: Manifest;
  /** Build args (docker) or provision environment (hcloud). */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** Whatever else shapes the result: Dockerfile path, base image, script order. */
  readonly settings: Readonly<Record<string, string>>;
}

/** Length-prefixed, sorted `key → value` pairs: no two different maps serialize alike. */
function encodeMap(label: string, map: Readonly<Record<string, string>>): string {
  const keys = Object.keys(map).sort();
  return `${label}\0${keys.length}\0` + keys.map((k) => `${k.length}:${k}\0${map[k]!.length}:${map[k]}\0`).join("");
}

/**
 * The image's content hash (64 hex): every file of the context or provision scripts (path, kind,
 * bytes), the build args and the settings. The image is rebuilt exactly when this changes; it is
 * also the image's tag and the snapshot's label.
 */
export function imageContentHash(inputs: ImageInputs): string {
  return sha256(
    [
      `fleet-image-v1\0${inputs.kind}\0`,
      encodeMap("files", inputs.manifest),
      encodeMap("args", inputs.buildArgs),
      encodeMap("settings", inputs.settings),
    ].join(""),
  );
}

/** The short form used in tags, labels and names. */
export function shortHash(hash: string): string {
  return hash.slice(0, 16);
}
