import type { Manifest } from "./image-hash";

/** Which files differ between the manifest an image was built from and the current one. */
export interface FileChanges {
  readonly added: string[];
  readonly removed: string[];
  /** Content, kind or executable bit changed. */
  readonly modified: string[];
}

export function changedFiles(before: Manifest | undefined, after: Manifest): FileChanges {
  const old = before ?? {};
  const sorted = (xs: string[]) => xs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    added: sorted(Object.keys(after).filter((p) => !(p in old))),
    removed: sorted(Object.keys(old).filter((p) => !(p in after))),
    modified: sorted(Object.keys(after).filter((p) => p in old && old[p] !== after[p])),
  };
}

export function countChanges(c: FileChanges): number {
  return c.added.length + c.removed.length + c.modified.length;
}

/**
 * One line for preview and logs: `3 files changed: +new.txt ~app/main.py -old.cfg`, at most
 * `limit` names (then `… and N more`). Says so when only build args or settings changed.
 */
export function describeChanges(c: FileChanges, limit = 20): string {
  const n = countChanges(c);
  if (n === 0) return "no file changed (build args or settings did)";
  const names = [...c.added.map((p) => `+${p}`), ...c.modified.map((p) => `~${p}`), ...c.removed.map((p) => `-${p}`)];
  const shown = names.slice(0, limit).join(" ");
  const more = names.length > limit ? ` … and ${names.length - limit} more` : "";
  return `${n} file${n === 1 ? "" : "s"} changed: ${shown}${more}`;
}
