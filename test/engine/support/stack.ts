/**
 * A throwaway stack of the real project for one engine test file: its own file backend in a
 * temporary folder, a passphrase, a unique name (`engine-<random>`) and its config file
 * `Pulumi.<stack>.yaml` in the project folder (git-ignored), removed afterwards. Every command
 * runs as a user would run it, and every result is kept (the secrets tests search them all).
 */
import { randomBytes } from "crypto";
import * as fs from "fs";
import { dump, load } from "js-yaml";
import * as os from "os";
import * as path from "path";
import { npmArgv, outputOf, pulumiArgv, PROJECT_DIR, run, start, type CliResult, type Started } from "./cli";

export type StackConfig = Record<string, unknown>;

export class EngineStack {
  /** `engine-<random>`, unless a test needs a fixed name (it must start with `engine-`: git-ignored). */
  readonly name: string;
  readonly backendDir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-engine-backend-"));
  readonly passphrase = `engine-${randomBytes(8).toString("hex")}`;
  readonly configFile: string;
  /** What every command of this stack printed, in order. */
  readonly transcript: { argv: string[]; result: CliResult }[] = [];

  get env(): NodeJS.ProcessEnv {
    return { PULUMI_BACKEND_URL: `file://${this.backendDir}`, PULUMI_CONFIG_PASSPHRASE: this.passphrase };
  }

  constructor(name = `engine-${randomBytes(4).toString("hex")}`) {
    if (!name.startsWith("engine-")) throw new Error(`stack name ${name}: engine stacks are named engine-…`);
    this.name = name;
    this.configFile = path.join(PROJECT_DIR, `Pulumi.${name}.yaml`);
  }

  /** `npm run pulumi -- <args> --stack <this>`. */
  pulumi(...args: string[]): Promise<CliResult> {
    return this.record(pulumiArgv([...args, "--stack", this.name]));
  }

  /** `npm run <script> -- <args>` (the test passes `--stack` itself, as users do). */
  npm(script: string, ...args: string[]): Promise<CliResult> {
    return this.record(npmArgv(script, args));
  }

  /** `npm run pulumi -- <args> --stack <this>`, started in its own process group (to be killed). */
  startPulumi(...args: string[]): Started {
    const [cmd, argv] = pulumiArgv([...args, "--stack", this.name]);
    const started = start(cmd, argv, { env: this.env });
    void started.done.then((result) => this.transcript.push({ argv: [cmd, ...argv], result }));
    return started;
  }

  private async record([cmd, argv]: [string, string[]]): Promise<CliResult> {
    const result = await run(cmd, argv, { env: this.env });
    this.transcript.push({ argv: [cmd, ...argv], result });
    return result;
  }

  /** Like `pulumi`, but a non-zero exit fails with the command's output. */
  async ok(...args: string[]): Promise<CliResult> {
    const r = await this.pulumi(...args);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${outputOf(r).slice(-6000)}`);
    return r;
  }

  /** `pulumi stack init`, then the config written into the file the CLI created (its salt kept). */
  async create(config: StackConfig): Promise<void> {
    const r = await run(...pulumiArgv(["stack", "init", this.name, "--no-select", "--non-interactive"]), {
      env: this.env,
    });
    if (r.code !== 0) throw new Error(`pulumi stack init ${this.name} exited ${r.code}:\n${outputOf(r)}`);
    this.writeConfig(config);
  }

  /** The stack's config file as YAML data (`config`, `encryptionsalt`). */
  readFile(): { config?: StackConfig; encryptionsalt?: string } {
    if (!fs.existsSync(this.configFile)) return {};
    return (load(fs.readFileSync(this.configFile, "utf8")) ?? {}) as { config?: StackConfig };
  }

  /** Replaces the config's keys given here (`fleet:services`, …), keeping the others and the salt. */
  writeConfig(config: StackConfig): void {
    const file = this.readFile();
    fs.writeFileSync(this.configFile, dump({ ...file, config: { ...(file.config ?? {}), ...config } }));
  }

  /** `pulumi stack export`, parsed. */
  async exportState(): Promise<{ deployment: { resources?: any[]; pending_operations?: any[] } }> {
    return JSON.parse((await this.ok("stack", "export")).stdout);
  }

  /**
   * `pulumi stack history --json`, oldest first: `npm run rollback -- <N>` numbers the entries
   * by place (a file backend stores `version: 0` for every entry), as Pulumi Cloud numbers them.
   */
  async historyOldestFirst(): Promise<{ kind: string; result: string }[]> {
    const newestFirst = JSON.parse((await this.ok("stack", "history", "--json")).stdout) as {
      kind: string;
      result: string;
    }[];
    return [...newestFirst].reverse();
  }

  /** `pulumi stack output --json`, parsed. */
  async outputs(): Promise<Record<string, any>> {
    return JSON.parse((await this.ok("stack", "output", "--json")).stdout);
  }

  /** Removes the stack, its config file and its backend. */
  async remove(): Promise<void> {
    await run(...pulumiArgv(["stack", "rm", this.name, "--yes", "--force", "--non-interactive"]), {
      env: this.env,
    }).catch(() => undefined);
    fs.rmSync(this.configFile, { force: true });
    fs.rmSync(this.backendDir, { recursive: true, force: true });
  }
}

/** The ServiceRelease resources of an exported deployment, by resource name (`<name>-release`). */
export function serviceReleases(deployment: { resources?: any[] }): Record<string, any> {
  return Object.fromEntries(
    (deployment.resources ?? [])
      .filter((r) => r.type === "pulumi-nodejs:dynamic/fleet:ServiceRelease")
      .map((r) => [String(r.urn).split("::").pop(), r]),
  );
}
