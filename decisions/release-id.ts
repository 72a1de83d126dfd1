import { createHash } from "crypto";

function sha256(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * A release id names what is deployed: the short commit for git sources, a content hash for
 * directories. A build command is part of what a release is, so it is part of the id: the same
 * commit built differently is another release.
 */
export function releaseIdFor(base: string, build?: string): string {
  return build ? `${base}-b${sha256(build).slice(0, 6)}` : base;
}

export function gitReleaseBase(commit: string): string {
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`not a full commit SHA: ${commit}`);
  return commit.slice(0, 12);
}

export function pathReleaseBase(contentHash: string): string {
  return `d-${contentHash.slice(0, 16)}`;
}

/** One file of a tree, for hashing. */
export interface TreeEntry {
  readonly path: string;
  readonly kind: "file" | "symlink";
  readonly executable: boolean;
  readonly content: Buffer;
}

/** A tree's content hash: paths, kinds, exec bits and bytes, independent of order and mtimes. */
export function treeHash(entries: readonly TreeEntry[]): string {
  const h = createHash("sha256");
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`${e.kind}\0${e.executable ? 1 : 0}\0${e.path}\0${e.content.length}\0`);
    h.update(e.content);
  }
  return h.digest("hex");
}

/** The dependency set's key: the `when` files' content and the install command. */
export function depsHash(files: readonly { path: string; content: Buffer }[], run: string): string {
  const h = createHash("sha256");
  h.update(`run\0${run}\0`);
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    h.update(`${f.path}\0${f.content.length}\0`);
    h.update(f.content);
  }
  return h.digest("hex").slice(0, 16);
}

/** An image's release id: its content-addressed id, short. */
export function imageReleaseId(imageId: string): string {
  const hex = imageId.replace(/^sha256:/, "");
  if (!/^[0-9a-f]{12,}$/.test(hex)) throw new Error(`not a docker image id: ${imageId}`);
  return `i-${hex.slice(0, 12)}`;
}
