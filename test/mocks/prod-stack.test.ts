import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { load } from "js-yaml";
import { dependenciesOf, findByType, findResource, installMocks, settle } from "../support/mocks";
import { SECRET_SIG_KEY } from "../support/provider-host";

/**
 * `pulumi preview` of Pulumi.prod.yaml under mocks: the program builds all five seed systems
 * from config alone. The app repositories are stand-ins beside a copy of the project (the stack
 * names them as ../<repo>), the key files live in a stand-in HOME, secrets are set as the CLI would.
 */

const ROOT = path.resolve(__dirname, "..", "..");
const SERVICE_RELEASE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";

function gitRepo(dir: string, files: Record<string, string>, modes: Record<string, number> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), c, { mode: modes[f] ?? 0o644 });
  }
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { stdio: "pipe" });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init");
  git("branch", "prod");
}

describe("Pulumi.prod.yaml under Pulumi mocks (the preview's resource graph)", function () {
  this.timeout(60_000);
  const cwd = process.cwd();
  const home = process.env["HOME"];

  before(async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-prod-"));
    gitRepo(path.join(base, "aether-core"), { "aether-core.py": "print(1)\n", "requirements.txt": "flask\n" });
    gitRepo(path.join(base, "sinesiAI"), {
      "backend/requirements.txt": "uvicorn\n",
      "frontend/package.json": "{}\n",
      "frontend/package-lock.json": "{}\n",
    });
    gitRepo(path.join(base, "pantherOS"), { "bin/panther-agent": "#!/bin/sh\n" }, { "bin/panther-agent": 0o755 });
    gitRepo(
      path.join(base, "polydev"),
      {
        "controller/package-lock.json": "{}\n",
        "frontend/package-lock.json": "{}\n",
        "vm-agent/provision/10-agent.sh": "#!/bin/sh\necho agent\n",
      },
      { "vm-agent/provision/10-agent.sh": 0o755 },
    );
    fs.mkdirSync(path.join(base, "server-agent-vnext"));
    fs.writeFileSync(path.join(base, "server-agent-vnext", "Dockerfile"), "FROM scratch\n");
    const project = path.join(base, "fleet");
    fs.mkdirSync(project);
    fs.mkdirSync(path.join(base, "home", ".ssh"), { recursive: true });
    fs.writeFileSync(
      path.join(base, "home", ".ssh", "fleet_deploy"),
      "-----BEGIN OPENSSH PRIVATE KEY-----\nDEPLOYKEY\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    fs.writeFileSync(
      path.join(base, "home", ".ssh", "fleet_deploy.pub"),
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDEPLOY fleet\n",
    );
    process.env["HOME"] = path.join(base, "home");
    process.chdir(project);

    await installMocks({
      newResource: (args) => {
        if (args.type === "pulumi-nodejs:dynamic/fleet:HcloudImage") return { id: "777", state: { imageId: "777" } };
        if (args.type === "pulumi-nodejs:dynamic/fleet:DockerImage")
          return { state: { imageId: "sha256:" + "c".repeat(64), tags: ["server-agent-vnext:x"], history: [] } };
        if (args.type === "pulumi-nodejs:dynamic/fleet:HostKey")
          return { state: { publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOST", privateKey: "P" } };
        if (args.type === "hcloud:index/server:Server")
          return { state: { ipv4Address: `203.0.113.${10 + args.name.length}` } };
        if (args.type === "hcloud:index/firewall:Firewall") return { id: "11" };
        return undefined;
      },
    });
    const stack = load(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")) as {
      config: Record<string, unknown>;
    };
    const config: Record<string, string> = Object.fromEntries(
      Object.entries(stack.config).map(([k, v]) => [k, JSON.stringify(v)]),
    );
    config["fleet:dbPasswords"] = JSON.stringify({ "server-agent-db": "PG-PROD-SECRET" });
    config["hcloud:token"] = "HCLOUD-TOKEN";
    pulumi.runtime.setAllConfig(config, ["fleet:dbPasswords", "hcloud:token"]);
    const entry = path.join(ROOT, "index.ts");
    delete require.cache[entry];
    require(entry);
    await settle();
  });
  after(() => {
    process.chdir(cwd);
    process.env["HOME"] = home;
  });

  it("registers every host, image, backup and service the stack names", () => {
    assert.equal(findByType("fleet:index:Host").length, 7);
    assert.equal(findByType("hcloud:index/server:Server").length, 4, "panther-1, panther-2, polydev, polydev-vm");
    assert.equal(findByType("fleet:index:GoldenImage").length, 2);
    assert.equal(findByType("fleet:index:DatabaseBackup").length, 2);
    assert.equal(findByType(SERVICE_RELEASE).length, 8, "7 services, panther-agent on two hosts");
  });

  it("backups come before the switch of the services they protect", () => {
    assert.ok(dependenciesOf(SERVICE_RELEASE, "aether-core-release").some((u) => u.endsWith("::aether-db-set")));
    assert.ok(dependenciesOf(SERVICE_RELEASE, "server-agent-release").some((u) => u.endsWith("::server-agent-db-set")));
  });

  it("Server Agent's rollback restores its database (restoreOnRollback: the server-agent-db set)", () => {
    const point = findResource(SERVICE_RELEASE, "server-agent-release").inputs["restoreOnRollback"] as
      Record<string, unknown> | undefined;
    assert.ok(point && SECRET_SIG_KEY in point, "the restore point is given, and secret");
    const { backup } = point["value"] as { backup: { name: string; engine: string } };
    assert.deepEqual([backup.name, backup.engine], ["server-agent-db", "postgres"]);
    assert.equal(findResource(SERVICE_RELEASE, "aether-core-release").inputs["restoreOnRollback"], undefined);
  });

  it("images come before what uses them: the golden snapshot before the VM host, the docker image before its service", () => {
    assert.equal(findResource("hcloud:index/server:Server", "polydev-vm-server").inputs["image"], "777");
    assert.ok(
      dependenciesOf("hcloud:index/server:Server", "polydev-vm-server").some((u) => u.includes("fleet:HcloudImage")),
    );
    assert.ok(dependenciesOf(SERVICE_RELEASE, "server-agent-release").some((u) => u.includes("fleet:DockerImage")));
  });

  it("pantherOS hosts deploy in parallel (one batch); services wait for their hosts' bootstrap", () => {
    const p1 = dependenciesOf(SERVICE_RELEASE, "panther-agent@panther-1-release");
    assert.ok(!p1.some((u) => u.includes("panther-agent@panther-2")), "no batch chain inside 100%");
    assert.ok(
      p1.some((u) => u.includes("fleet:HostBootstrap")),
      "the host is bootstrapped first",
    );
  });

  it("secrets stay secret: keys, the database password, the hcloud token", () => {
    const set = findResource("pulumi-nodejs:dynamic/fleet:BackupSet", "server-agent-db-set");
    const plain = JSON.stringify(
      findByType(SERVICE_RELEASE).map((r) => ({
        ...r.inputs,
        connection: null,
        secretEnv: null,
        notify: null,
        restoreOnRollback: null,
        __provider: null,
      })),
    );
    assert.ok(!plain.includes("DEPLOYKEY") && !plain.includes("PG-PROD-SECRET"));
    // The restore point carries the backup set's connection and password: secret as a whole.
    for (const r of findByType(SERVICE_RELEASE).filter((r) => r.inputs["restoreOnRollback"] !== undefined))
      assert.ok(SECRET_SIG_KEY in (r.inputs["restoreOnRollback"] as object), r.name);
    const pg = set.inputs["postgres"] as Record<string, unknown>;
    assert.ok(SECRET_SIG_KEY in pg || SECRET_SIG_KEY in (pg["password"] as object));
    for (const r of findByType(SERVICE_RELEASE))
      assert.ok(SECRET_SIG_KEY in (r.inputs["connection"] as object), r.name);
  });
});
