/**
 * Another checkout of the project, for the engine tests of issue #30 (fleet's code in state): a
 * copy of the project's tracked and working files in a temporary folder (node_modules linked to
 * the project's, no dist/, no stack files but the one it is given), run as another machine
 * would run it: `node build/launch.js pulumi …` in that folder, with a HOME, a cache and a Pulumi
 * home of its own (empty), the same backend and passphrase, and the Pulumi CLI the project uses
 * (FLEET_PULUMI_BIN_DIR: with an empty HOME, tools/pulumi/ensure.sh would find no built CLI).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { pulumiCli } from "../../../engine/cli";
import { outputOf, PROJECT_DIR, run, type CliResult } from "./cli";
import type { EngineStack } from "./stack";

/** The files a clone gets: what `git ls-files -co --exclude-standard` lists, minus what a build or a stack makes. */
export function projectFiles(from = PROJECT_DIR): string[] {
  const listed = execFileSync("git", ["-C", from, "ls-files", "-co", "--exclude-standard", "-z"], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  })
    .split("\0")
    .filter(Boolean);
  return [...new Set(listed)]
    .filter((f) => !/^(node_modules|dist)(\/|$)/.test(f))
    .filter((f) => !/^Pulumi\.[^/]+\.yaml$/.test(f)) // other stacks' config (dev, prod, …)
    .filter((f) => fs.existsSync(path.join(from, f))) // tracked but deleted in the working tree
    .sort();
}

export interface CloneOptions {
  /** Source edits, by project-relative path: each gets the file's text and returns the new text. */
  readonly patch?: Record<string, (text: string) => string>;
}

/** A copy of the project in a temporary folder, with its own HOME. */
export class ProjectClone {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-clone-"));
  /** The project folder of the copy. */
  readonly dir = path.join(this.root, "fleet");
  /** An empty HOME (and XDG cache, Pulumi home below it). */
  readonly home = path.join(this.root, "home");
  /** The Pulumi CLI the project folder uses (found with this process's HOME). */
  readonly binDir = pulumiCli().binDir;
  readonly transcript: { args: string[]; result: CliResult }[] = [];

  constructor(opts: CloneOptions = {}) {
    fs.mkdirSync(this.dir);
    fs.mkdirSync(this.home);
    for (const f of projectFiles()) {
      const src = path.join(PROJECT_DIR, f);
      const dest = path.join(this.dir, f);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      const st = fs.lstatSync(src);
      if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dest);
      else if (st.isFile()) fs.copyFileSync(src, dest);
    }
    fs.symlinkSync(path.join(PROJECT_DIR, "node_modules"), path.join(this.dir, "node_modules"));
    for (const [file, edit] of Object.entries(opts.patch ?? {})) {
      const full = path.join(this.dir, file);
      const before = fs.readFileSync(full, "utf8");
      const after = edit(before);
      if (after === before) throw new Error(`ProjectClone: the patch of ${file} changed nothing`);
      fs.writeFileSync(full, after);
    }
  }

  /** Copies a stack's config file (`Pulumi.<stack>.yaml`) into the copy: the project folder's, or `from`. */
  takeStackConfig(stack: EngineStack, from = stack.configFile): void {
    fs.copyFileSync(from, this.stackConfigFile(stack));
  }

  stackConfigFile(stack: EngineStack): string {
    return path.join(this.dir, `Pulumi.${stack.name}.yaml`);
  }

  /**
   * Another machine's environment: this process's, without anything naming this machine's
   * Pulumi or fleet folders, with the clone's HOME and caches, the stack's backend and passphrase.
   */
  env(stack: EngineStack): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (/^(PULUMI_|FLEET_|XDG_|npm_|INIT_CWD$|PWD$|OLDPWD$)/.test(k)) continue;
      env[k] = v;
    }
    return {
      ...env,
      HOME: this.home,
      XDG_CACHE_HOME: path.join(this.home, ".cache"),
      PULUMI_HOME: path.join(this.home, ".pulumi"),
      FLEET_PULUMI_BIN_DIR: this.binDir,
      ...stack.env,
    };
  }

  /** `node build/launch.js pulumi <args> --stack <stack>` in the copy (what its `npm run pulumi` runs). */
  async pulumi(stack: EngineStack, ...args: string[]): Promise<CliResult> {
    const argv = [path.join(this.dir, "build", "launch.js"), "pulumi", ...args, "--stack", stack.name];
    const result = await run(process.execPath, argv, { cwd: this.dir, baseEnv: this.env(stack) });
    this.transcript.push({ args, result });
    return result;
  }

  /** Like `pulumi`, but a non-zero exit fails with the command's output. */
  async ok(stack: EngineStack, ...args: string[]): Promise<CliResult> {
    const r = await this.pulumi(stack, ...args);
    if (r.code !== 0)
      throw new Error(`(clone) pulumi ${args.join(" ")} exited ${r.code}:\n${outputOf(r).slice(-6000)}`);
    return r;
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
