/**
 * What the logs and exec real-server tests share: a small service deployed to test servers the
 * way status.test.ts deploys one, a project folder whose `pulumi` answers
 * `config --json --show-secrets` (so the scripts know the secret, and must redact it), and the
 * scripts run as a user runs them, one node process each (so a SIGINT reaches the script itself).
 */
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { shippedProvider } from "../../providers/ship";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress, loadInventory } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

const ROOT = path.resolve(__dirname, "..", "..");
export const SERVICE_ROOT = "/srv/fleet-test";

export interface Deployed {
  readonly app: GitApp;
  destroy(): Promise<void>;
}

/**
 * Deploys `name` (the pyapp fixture, `start` under sh with T_TOKEN in its environment) to each of
 * `hosts`, on `port`, running as `runAs`.
 */
export async function deploy(
  name: string,
  hosts: readonly string[],
  port: number,
  start: string,
  secret: string,
  runAs?: string,
): Promise<Deployed> {
  const provider = await ProviderHost.start();
  const app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
  const resources: SimulatedResource[] = [];
  const destroy = async () => {
    for (const r of resources) await r.destroy().catch(() => undefined);
    await provider.stop();
  };
  try {
    for (const host of hosts) {
      const resource = new SimulatedResource(provider, shippedProvider("service"), { name: `${name}-${host}` });
      resources.push(resource);
      await resource.up(
        serviceInputs({
          name,
          connection: connectionFor(host),
          root: SERVICE_ROOT,
          source: { git: app.dir },
          start,
          env: { APP_HOST: hostAddress(host), APP_PORT: String(port) },
          secretEnv: { T_TOKEN: secret },
          health: { url: `http://${hostAddress(host)}:${port}/api/health` },
          ...(runAs ? { runAs } : {}),
        }),
      );
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return { app, destroy };
}

export interface Project {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * A project folder for stack `t` whose `pulumi` prints `config` as `pulumi config --json
 * --show-secrets` does (secretEnv marked secret, its value in clear, as the CLI decrypts it).
 */
export function project(config: Record<string, unknown>): Project {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-operate-"));
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  const answer = Object.fromEntries(
    Object.entries(config).map(([key, value]) => [
      key,
      { value: JSON.stringify(value), objectValue: value, secret: key === "fleet:secretEnv" },
    ]),
  );
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(answer));
  fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\ncat "${dir}/config.json"\n`, { mode: 0o755 });
  return { dir, env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}`, FLEET_PULUMI_BIN_DIR: bin } };
}

/** A test server as the scripts' config names it (its key file and known_hosts from the inventory). */
export function hostConfig(host: string, user = "root"): Record<string, unknown> {
  const inv = loadInventory();
  return { address: hostAddress(host), user, privateKeyFile: inv.ssh_key, knownHostsFile: inv.known_hosts };
}

/** The argv that runs `scripts/<script>.ts` in one node process (tsx's register, no wrapper process). */
export function scriptArgv(script: string, args: readonly string[]): string[] {
  return [process.execPath, "-r", require.resolve("tsx/cjs"), path.join(ROOT, "scripts", `${script}.ts`), ...args];
}

export function start(script: string, args: readonly string[], p: Project): ChildProcess {
  const [node, ...rest] = scriptArgv(script, args);
  return spawn(node!, rest, { cwd: p.dir, env: p.env, stdio: ["pipe", "pipe", "pipe"] });
}

export interface Ran {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs a script to its end with `input` on stdin (then closed). */
export function runScript(script: string, args: readonly string[], p: Project, input = ""): Promise<Ran> {
  return new Promise((resolve) => {
    const child = start(script, args, p);
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.on("close", (status) => resolve({ status: status ?? -1, stdout: Buffer.concat(out), stderr }));
    child.stdin!.end(input);
  });
}
