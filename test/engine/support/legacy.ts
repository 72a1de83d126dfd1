/**
 * An older fleet, checked out beside this one, for tests of what a fleet upgrade does to state
 * an older fleet wrote: a git worktree of that commit (detached, in a temporary folder) with this
 * checkout's node_modules linked in, and its command lines run as a user runs them there
 * (`node build/launch.js pulumi <args> --stack <name>`, cwd = the worktree: the older fleet builds
 * its own dist/ at its first command). A stack's config file lives in the folder of the fleet that
 * runs it: `useConfigOf` copies it across; both fleets share the stack's file backend and
 * passphrase (EngineStack.env).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROJECT_DIR, run, type CliResult } from "./cli";
import type { EngineStack } from "./stack";

function git(...args: string[]): string {
  return execFileSync("git", ["-C", PROJECT_DIR, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/** Whether `commit` is in this clone's object store (a shallow clone may not have it). */
export function hasCommit(commit: string): boolean {
  try {
    git("cat-file", "-e", `${commit}^{commit}`);
    return true;
  } catch {
    return false;
  }
}

export class LegacyCheckout {
  /** The worktree: the older fleet's project folder. */
  readonly dir: string;
  private readonly parent: string;

  private constructor(
    readonly commit: string,
    parent: string,
  ) {
    this.parent = parent;
    this.dir = path.join(parent, "fleet");
  }

  /**
   * Adds a detached worktree of `commit` and links this checkout's node_modules into it. Throws
   * `absent` when the commit is not in this clone's history.
   */
  static create(commit: string, absent: string): LegacyCheckout {
    if (!hasCommit(commit)) throw new Error(absent);
    const checkout = new LegacyCheckout(commit, fs.mkdtempSync(path.join(os.tmpdir(), "fleet-legacy-")));
    git("worktree", "add", "--detach", checkout.dir, commit);
    fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(checkout.dir, "node_modules"), "dir");
    return checkout;
  }

  /** The stack's config file in this checkout. */
  configFile(stack: EngineStack): string {
    return path.join(this.dir, path.basename(stack.configFile));
  }

  /** `node build/launch.js pulumi <args> --stack <stack>` in the worktree (recorded in the stack's transcript). */
  async pulumi(stack: EngineStack, ...args: string[]): Promise<CliResult> {
    const argv = [path.join(this.dir, "build", "launch.js"), "pulumi", ...args, "--stack", stack.name];
    // The first command builds the older fleet's dist/ (esbuild, a few seconds) before it runs.
    const result = await run(process.execPath, argv, { cwd: this.dir, env: stack.env, timeoutMs: 300_000 });
    stack.transcript.push({ argv: [process.execPath, ...argv], result });
    return result;
  }

  /** Removes the worktree (the node_modules link first: never what it points at) and prunes. */
  remove(): void {
    fs.rmSync(path.join(this.dir, "node_modules"), { force: true });
    try {
      git("worktree", "remove", "--force", this.dir);
    } finally {
      git("worktree", "prune");
      fs.rmSync(this.parent, { recursive: true, force: true });
    }
  }
}

/** Copies the stack's config file into `toDir` from `fromDir` (the fleet that runs next reads it there). */
export function useConfigOf(stack: EngineStack, fromDir: string, toDir: string): void {
  const name = path.basename(stack.configFile);
  fs.copyFileSync(path.join(fromDir, name), path.join(toDir, name));
}
