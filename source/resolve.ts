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
import type { ResolvedSource } from "../model/service";

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
  | { readonly path: string; readonly exclude?: readonly string[] };

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

/** Turns a tar-style name pattern (`*.log`, `dist`) into a matcher of single path components. */
function nameMatcher(patterns: readonly string[]): (name: string) => boolean {
  const regexes = patterns.map(
    (p) =>
      new RegExp(
        "^" +
          p
            .replace(/[.+^${}()|[\]\\]/g, "\\$&")
            .replace(/\*/g, ".*")
            .replace(/\?/g, ".") +
          "$",
      ),
  );
  return (name) => regexes.some((r) => r.test(name));
}

/** Every file and symlink below `root`, minus excluded names (same rule as tar --exclude). */
export function walkTree(root: string, exclude: readonly string[]): TreeEntry[] {
  const excluded = nameMatcher(exclude);
  const entries: TreeEntry[] = [];
  const visit = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      if (excluded(name)) continue;
      const full = path.join(dir, name);
      const relative = rel ? `${rel}/${name}` : name;
      const stat = fs.lstatSync(full);
      if (stat.isSymbolicLink()) {
        entries.push({
          path: relative,
          kind: "symlink",
          executable: false,
          content: Buffer.from(fs.readlinkSync(full)),
        });
      } else if (stat.isDirectory()) {
        visit(full, relative);
      } else if (stat.isFile()) {
        entries.push({
          path: relative,
          kind: "file",
          executable: (stat.mode & 0o111) !== 0,
          content: fs.readFileSync(full),
        });
      }
    }
  };
  visit(root, "");
  return entries;
}
