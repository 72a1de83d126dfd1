import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { manifestOf, type Manifest } from "../../decisions/image-hash";
import { walkTree } from "../../source/resolve";

/**
 * Program side (runs while the Pulumi program runs, never in the provider): reads an image's
 * inputs from disk, so that `pulumi preview` already knows the content hash and the manifest.
 */

/** Excluded from contexts by default: VCS data only (node_modules may well belong in an image). */
export const DEFAULT_IMAGE_EXCLUDES = [".git"];

export interface ImageContext {
  readonly dir: string;
  readonly exclude: string[];
  readonly manifest: Manifest;
}

/** Every file of `dir`, minus `exclude` (and ".git"), as a manifest. */
export function readImageContext(dir: string, exclude: readonly string[], label: string): ImageContext {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new Error(`${label}: ${abs} is not a directory`);
  const all = [...DEFAULT_IMAGE_EXCLUDES, ...exclude.filter((e) => !DEFAULT_IMAGE_EXCLUDES.includes(e))];
  const manifest = manifestOf(walkTree(abs, all));
  if (Object.keys(manifest).length === 0) throw new Error(`${label}: ${abs} has no files`);
  return { dir: abs, exclude: all, manifest };
}

/**
 * The commit that last changed `dir` (`git log -1 -- dir`), so unrelated commits elsewhere in the
 * repository neither retag nor rebuild the image; `<sha>-dirty` when the directory has
 * uncommitted changes; "" outside a git work tree.
 */
export function commitOf(dir: string): string {
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const sha = git("log", "-1", "--format=%H", "--", ".");
    if (!/^[0-9a-f]{40}$/.test(sha)) return "";
    return git("status", "--porcelain", "--", ".") ? `${sha}-dirty` : sha;
  } catch {
    return "";
  }
}

/** The provision scripts to run: the given list, or every executable file at the top of `dir`, by name. */
export function provisionRunList(
  dir: string,
  manifest: Manifest,
  run: readonly string[] | undefined,
  label: string,
): string[] {
  if (run && run.length > 0) {
    for (const script of run) {
      if (!(script in manifest)) throw new Error(`${label}.run: ${script} is not a file of ${dir}`);
    }
    return [...run];
  }
  const scripts = Object.keys(manifest)
    .filter((p) => !p.includes("/") && manifest[p]!.startsWith("x:"))
    .sort();
  if (scripts.length === 0)
    throw new Error(`${label}: ${dir} has no executable script at its top level (or give run: [...])`);
  return scripts;
}
