import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import { load } from "js-yaml";
import * as os from "os";
import * as path from "path";
import { loadInventory } from "../support/fleet";
import { outputOf, PROJECT_DIR } from "./support/cli";
import { steps } from "./support/diff";
import { EngineStack, type StackConfig } from "./support/stack";

/**
 * `pulumi preview` with the real engine on a temporary stack holding a copy of Pulumi.prod.yaml's
 * config (the five seed systems): what it does on a machine without the hcloud and docker
 * plugins, with no network but loopback. First the copy as it is, then with the secrets its
 * header says to set, then with its machine-local inputs (sibling repositories, key files) in a
 * temporary folder and its existing hosts' addresses moved to unused loopback addresses.
 */
const UNUSED = { "aether.local": "127.0.0.201", "sinesi.example.net": "127.0.0.202", "198.51.100.20": "127.0.0.203" };

/** What the prod config expects beside the project, as small git repositories (branch → files). */
const SIBLINGS: Record<string, { branch: string; files: Record<string, string> }> = {
  "aether-core": { branch: "main", files: { "aether-core.py": "", "requirements.txt": "" } },
  sinesiAI: {
    branch: "prod",
    files: {
      "backend/server.py": "",
      "backend/requirements.txt": "",
      "frontend/package.json": "{}\n",
      "frontend/package-lock.json": "{}\n",
    },
  },
  pantherOS: { branch: "main", files: { "bin/panther-agent": "" } },
  polydev: {
    branch: "main",
    files: {
      "controller/package-lock.json": "{}\n",
      "frontend/package-lock.json": "{}\n",
      "vm-agent/provision/10-agent.sh": "#!/bin/sh\n",
    },
  },
  "server-agent-vnext": { branch: "main", files: { Dockerfile: "FROM scratch\n" } },
};

function gitRepo(dir: string, branch: string, files: Record<string, string>): void {
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text, { mode: f.endsWith(".sh") ? 0o755 : 0o644 });
  }
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { stdio: "ignore" });
  git("init", "-q", "-b", branch);
  git("add", "-A");
  git("-c", "user.email=test@fleet", "-c", "user.name=fleet test", "commit", "-q", "-m", "seed");
}

/** The prod config with its relative paths under `siblings`, its key files the test key, its addresses unused loopback ones. */
function localized(config: StackConfig, siblings: string, keyFile: string): StackConfig {
  const c = structuredClone(config) as Record<string, Record<string, any>>;
  const rebase = (p: string) => (p.startsWith("../") ? path.join(siblings, p.slice(3)) : p);
  for (const h of Object.values(c["fleet:hosts"]!)) {
    if (h.address) h.address = UNUSED[h.address as keyof typeof UNUSED];
    if (h.privateKeyFile) h.privateKeyFile = keyFile;
    if (h.publicKeyFile) h.publicKeyFile = `${keyFile}.pub`;
  }
  for (const s of Object.values(c["fleet:services"]!)) if (s.source.git) s.source.git = rebase(s.source.git);
  for (const i of Object.values(c["fleet:images"]!)) {
    if (i.provision) i.provision.dir = rebase(i.provision.dir);
    if (i.context) i.context = rebase(i.context);
  }
  return c;
}

describe("engine: pulumi preview of a copy of Pulumi.prod.yaml without the hcloud and docker plugins", function () {
  this.timeout(180_000);
  const stack = new EngineStack();
  const siblings = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-engine-prod-"));
  let prod: StackConfig;

  before(async function () {
    this.timeout(60_000);
    prod = (load(fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.prod.yaml"), "utf8")) as { config: StackConfig })
      .config;
    await stack.create(prod);
  });
  after(async () => {
    await stack.remove();
    fs.rmSync(siblings, { recursive: true, force: true });
  });

  it("as it is: refused for the database password it lacks, before any resource", async () => {
    const r = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.notEqual(r.code, 0);
    const out = outputOf(r);
    assert.ok(
      out.includes(
        "backups.server-agent-db.postgres: its password goes in secret config: pulumi config set --secret --path 'fleet:dbPasswords.server-agent-db'",
      ),
      out,
    );
    assert.ok(out.includes("(fleet outcome: config)"), out);
    assert.deepEqual(
      steps(r.stdout).map((s) => s.type),
      ["pulumi:pulumi:Stack"],
    );
  });

  it("with the secrets set as its header says: stops at the first input missing beside the project", async () => {
    await stack.ok("config", "set", "--secret", "--path", "fleet:dbPasswords.server-agent-db", "engine-test-pw");
    await stack.ok("config", "set", "--secret", "hcloud:token", "engine-test-token");
    const r = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.notEqual(r.code, 0);
    const missing = path.resolve(PROJECT_DIR, "../polydev/vm-agent/provision");
    assert.ok(
      outputOf(r).includes(`images.polydev-vm-agent.provision.dir: ${missing} is not a directory`),
      outputOf(r),
    );
  });

  it("with its local inputs present: the engine stops at the first hcloud resource, for want of the plugin", async () => {
    for (const [name, repo] of Object.entries(SIBLINGS)) gitRepo(path.join(siblings, name), repo.branch, repo.files);
    stack.writeConfig(localized(prod, siblings, loadInventory().ssh_key));
    const r = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.notEqual(r.code, 0);
    const out = outputOf(r);
    assert.match(
      out,
      /error: no resource plugin 'pulumi-resource-hcloud' found in the workspace at version v\d+\.\d+\.\d+ or on your \$PATH/,
    );
    assert.ok(!out.includes("(fleet outcome:"), `no fleet error: the program ran through:\n${out}`);
    const previewed = steps(r.stdout);
    // The engine stops the whole preview there: how many of the other steps it printed first
    // varies from run to run (they race the plugin load), none of them is an hcloud one.
    assert.ok(!previewed.some((s) => s.type.startsWith("hcloud:")), out);
    assert.ok(previewed.length > 1, `the program's resources reached the engine:\n${out}`);
    console.log(
      `      previewed before the stop: ${previewed.map((s) => `${s.type.split(":").pop()} ${s.name}`).join(", ")}`,
    );
  });
});
