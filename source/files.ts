import { excludePatternProblem } from "../model/exclude-pattern";

/**
 * The files of a directory release: ONE list, used for its content hash (source/resolve.ts
 * `walkTree`, so its release id) and for its pack (source/pack.ts), so that what is deployed is
 * what the release id names.
 *
 * Exclude patterns are gitignore-like (matched with picomatch):
 * - paths are relative to the directory, with `/`; matching is case-sensitive;
 * - a pattern without a slash matches a name at any depth: `*.log`, `node_modules`, `.env`;
 * - a pattern with a slash is anchored at the directory: `data/*.db` is `data/x.db`, not
 *   `lib/data/x.db`; a leading `./` anchors a single name (`./build`: the top-level build only);
 * - `*`, `?` and `[...]` (`[!a]` negates) never match `/`; `**` matches any number of directories
 *   (`**\/cache`, `logs/**\/*.gz` also matches `logs/a.gz`); `\` escapes; braces and extglobs
 *   are literal text, and a leading `!` (negation) is refused;
 * - wildcards match dotfiles (`*.env` matches `.env`);
 * - a pattern matching a directory excludes everything below it (`node_modules`, `build/tmp`);
 *   a trailing `/` matches directories only (`data/`), and `data/**` is the same as `data/`;
 * - symlinks are entries of their own, never followed (a symlink to a directory is one entry,
 *   which `data/` does not match); other special files (sockets, FIFOs) are never part of a
 *   release, nor are directories themselves: an empty directory is not deployed, as with git.
 *
 * Runs in the program and inside the provider, so fs, path and picomatch are required here.
 */

/** A path (relative, `/`-separated) and whether it is a directory → excluded or not. */
export type ExcludeMatcher = (relative: string, isDirectory: boolean) => boolean;

/** The matcher for `patterns`; throws on a pattern that excludePatternProblem refuses. */
export function excludeMatcher(patterns: readonly string[]): ExcludeMatcher {
  const picomatch = require("picomatch/posix") as typeof import("picomatch/posix");
  const rules = patterns.map((pattern) => {
    const problem = excludePatternProblem(pattern);
    if (problem) throw new Error(`exclude pattern ${JSON.stringify(pattern)}: ${problem}`);
    let body = pattern.replace(/^\.\//, "");
    let directoriesOnly = body.endsWith("/");
    if (directoriesOnly) body = body.slice(0, -1);
    const anchored = body.includes("/") || pattern.startsWith("./");
    // gitignore's `data/**` is what is below data; excluding the directory data does the same.
    if (body.endsWith("/**")) {
      body = body.slice(0, -3);
      directoriesOnly = true;
    }
    const matches = picomatch(body, { dot: true, nobrace: true, noextglob: true, posix: true });
    return { anchored, directoriesOnly, matches };
  });
  return (relative, isDirectory) =>
    rules.some(
      (r) =>
        (isDirectory || !r.directoriesOnly) &&
        r.matches(r.anchored ? relative : relative.slice(relative.lastIndexOf("/") + 1)),
    );
}

/**
 * Every file and symlink below `root` that is not excluded, as sorted relative paths (code-unit
 * order, as treeHash sorts). Excluded directories are not entered.
 */
export function releaseFiles(root: string, exclude: readonly string[]): string[] {
  const fs = require("fs") as typeof import("fs");
  const path = require("path") as typeof import("path");
  const excluded = excludeMatcher(exclude);
  const files: string[] = [];
  const visit = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir)) {
      const relative = rel ? `${rel}/${name}` : name;
      const stat = fs.lstatSync(path.join(dir, name));
      if (excluded(relative, stat.isDirectory())) continue;
      if (stat.isDirectory()) visit(path.join(dir, name), relative);
      else if (stat.isFile() || stat.isSymbolicLink()) files.push(relative);
    }
  };
  visit(root, "");
  return files.sort();
}
