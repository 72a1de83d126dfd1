import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import {
  depsHash,
  gitReleaseBase,
  pathReleaseBase,
  releaseIdFor,
  treeHash,
  type TreeEntry,
} from "../decisions/release-id";
import { excludePatternProblem } from "../model/exclude-pattern";
import type { ResolvedSource } from "../model/service";
import { releaseFiles } from "./files";

/**
 * Resolves a service's source on the deploying machine, while the program runs (so that
 * `pulumi preview` already knows the release id and can show old → new).
 */

export type SourceArgs =
  | {
      readonly git: string;
      readonly ref?: string;
      readonly allowDirty?: boolean;
      /**
       * The parts of the repository this service is made of (e.g. ["backend"]): its release is
       * the last commit that touched them, so commits elsewhere in a shared repo leave it alone.
       */
      readonly paths?: readonly string[];
    }
  | {
      readonly path: string;
      /**
       * What of the directory is not part of the release (beyond DEFAULT_EXCLUDES): neither
       * hashed into its id nor deployed. gitignore-like patterns, relative to the directory
       * (full rules in source/files.ts): `*.log` or `node_modules` (no slash) match a name at any
       * depth; `data/*.db` (a slash) is anchored at the directory, and `*` stops at `/`;
       * `**` spans directories; a matching directory is left out with everything below it, and
       * `data/` matches directories only; wildcards match dotfiles; symlinks are never
       * followed. Absolute patterns, `..` and a leading `!` are refused.
       */
      readonly exclude?: readonly string[];
    };

export interface ResolvedRelease {
  readonly source: ResolvedSource;
  readonly releaseId: string;
  readonly commit: string;
  /** Reads a file of the release (for the dependency hash). */
  readonly readFile: (relative: string) => Buffer;
}

/** Excluded from directory sources by default: VCS data and locally installed dependencies. */
export const DEFAULT_EXCLUDES = [".git", "node_modules"];

function git(repo: string, args: string[]): string {
  try {
    return execFileSync("git", ["-C", repo, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? "").trim();
    throw new Error(`git ${args.join(" ")} in ${repo} failed: ${stderr || (err as Error).message}`);
  }
}

/** The newest commit at or before `head` that changed any of `paths`. */
function lastCommitTouching(repo: string, head: string, paths: readonly string[], label: string): string {
  const commit = git(repo, ["log", "-1", "--format=%H", head, "--", ...paths]);
  if (!commit)
    throw new Error(
      `${label}.source.paths: no commit of ${repo} up to ${head.slice(0, 12)} touches ${paths.join(", ")}`,
    );
  return commit;
}

export function resolveRelease(args: SourceArgs, build: string | undefined, label: string): ResolvedRelease {
  if ("git" in args) {
    const repo = path.resolve(args.git);
    const ref = args.ref ?? "HEAD";
    const head = git(repo, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]);
    const commit = args.paths?.length ? lastCommitTouching(repo, head, args.paths, label) : head;
    if (!args.allowDirty) {
      const dirty = git(repo, ["status", "--porcelain", "--untracked-files=no"]);
      if (dirty) {
        throw new Error(
          `${label}.source.git: ${repo} has uncommitted changes, which would not be deployed (fleet deploys commit ${commit.slice(0, 12)} of ${ref}). ` +
            `Commit them, or set source.allowDirty: true.\n${dirty}`,
        );
      }
    }
    return {
      source: { kind: "git", repo, commit },
      releaseId: releaseIdFor(gitReleaseBase(commit), build),
      commit,
      readFile: (relative) => {
        try {
          return execFileSync("git", ["-C", repo, "show", `${commit}:${relative}`], {
            stdio: ["ignore", "pipe", "pipe"],
          });
        } catch {
          throw new Error(`${label}.install.when: ${relative} is not in commit ${commit.slice(0, 12)} of ${repo}`);
        }
      },
    };
  }
  const dir = path.resolve(args.path);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`${label}.source.path: ${dir} is not a directory`);
  }
  (args.exclude ?? []).forEach((pattern, i) => {
    const problem = excludePatternProblem(pattern);
    if (problem) throw new Error(`${label}.source.exclude.${i}: ${problem}`);
  });
  const exclude = [...DEFAULT_EXCLUDES, ...(args.exclude ?? [])];
  const releaseId = releaseIdFor(pathReleaseBase(treeHash(walkTree(dir, exclude))), build);
  return {
    source: { kind: "path", path: dir, exclude },
    releaseId,
    commit: releaseId,
    readFile: (relative) => {
      const file = path.join(dir, relative);
      if (!fs.existsSync(file)) throw new Error(`${label}.install.when: ${relative} is not in ${dir}`);
      return fs.readFileSync(file);
    },
  };
}

/** The dependency set's hash for `when` files read from the release. */
export function resolveDepsHash(release: ResolvedRelease, when: readonly string[], run: string): string {
  return depsHash(
    when.map((p) => ({ path: p, content: release.readFile(p) })),
    run,
  );
}

/**
 * Every file and symlink of the release below `root` (source/files.ts `releaseFiles`: the same
 * list the pack holds), with what the content hash needs.
 */
export function walkTree(root: string, exclude: readonly string[]): TreeEntry[] {
  return releaseFiles(root, exclude).map((relative) => {
    const full = path.join(root, relative);
    const stat = fs.lstatSync(full);
    return stat.isSymbolicLink()
      ? { path: relative, kind: "symlink", executable: false, content: Buffer.from(fs.readlinkSync(full)) }
      : { path: relative, kind: "file", executable: (stat.mode & 0o111) !== 0, content: fs.readFileSync(full) };
  });
}
