import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";
import { parseFleetConfig } from "../../config/schema";

const ROOT = path.resolve(__dirname, "..", "..");

/** The `fleet:` keys of a stack file, as index.ts reads them (without the namespace). */
function fleetConfig(file: string): Record<string, unknown> {
  const doc = load(fs.readFileSync(path.join(ROOT, file), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config)
      .filter(([k]) => k.startsWith("fleet:"))
      .map(([k, v]) => [k.slice("fleet:".length), v]),
  );
}

describe("stack files", () => {
  for (const file of ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]) {
    it(`${file} passes the config schema`, () => {
      // Secret values are set with the CLI (secure: values), so stand-ins take their place here.
      const raw = fleetConfig(file);
      const backups = (raw["backups"] ?? {}) as Record<string, { postgres?: unknown }>;
      const dbPasswords = Object.fromEntries(
        Object.entries(backups)
          .filter(([, b]) => b.postgres)
          .map(([n]) => [n, "set-with-the-cli"]),
      );
      const cfg = parseFleetConfig({ ...raw, privateKeys: {}, dbPasswords });
      assert.ok(Object.keys(cfg.services).length > 0);
    });
  }

  it("the dev stack deploys the demo app in this repository to a loopback test server", () => {
    const cfg = parseFleetConfig(fleetConfig("Pulumi.dev.yaml"));
    const demo = cfg.hosts["demo"]!;
    assert.ok(demo.kind === "existing" && /^127\./.test(demo.address));
    assert.ok(fs.existsSync(path.join(ROOT, cfg.services["hello"]!.source.path!, "app.py")));
  });
});

describe("Pulumi.prod.yaml expresses the five seed systems", () => {
  const cfg = () => {
    const raw = fleetConfig("Pulumi.prod.yaml");
    return parseFleetConfig({ ...raw, dbPasswords: { "server-agent-db": "set-with-the-cli" } });
  };
  it("AETHER: a Pi, a Python service checked against its commit, a SQLite backup before each deploy (keep 5)", () => {
    const c = cfg();
    assert.equal(c.services["aether-core"]!.health.version?.field, "commit");
    assert.deepEqual(
      [c.backups["aether-db"]!.sqlite?.path, c.backups["aether-db"]!.keep, c.backups["aether-db"]!.protects],
      ["/srv/fleet/aether-core/shared/data/aether.db", 5, ["aether-core"]],
    );
  });
  it("data that outlives releases is shared (AETHER's database, Server Agent's logs); Polydev's post-deploy is a hook", () => {
    const c = cfg();
    const aether = c.services["aether-core"]!;
    assert.deepEqual(aether.shared, { dirs: ["data"], files: {} });
    // The backup and the service read the same file, in the shared dir.
    assert.equal(aether.env["AETHER_DB"], c.backups["aether-db"]!.sqlite?.path);
    assert.ok(aether.env["AETHER_DB"]!.startsWith(`${aether.root}/aether-core/shared/data/`));
    assert.deepEqual(c.services["server-agent"]!.shared, { dirs: ["logs"], files: {}, containerDir: "/app" });
    assert.match(String(c.services["polydev-controller"]!.hooks?.postDeploy), /build-golden-snapshot-complete\.sh$/);
  });
  it("sinesiAI: two services from one repo, each reinstalling on its own lockfile only", () => {
    const c = cfg();
    assert.equal(c.services["sinesi-backend"]!.source.git, c.services["sinesi-frontend"]!.source.git);
    assert.deepEqual(c.services["sinesi-backend"]!.source.paths, ["backend"]);
    assert.deepEqual(c.services["sinesi-frontend"]!.source.paths, ["frontend"]);
    assert.deepEqual(c.services["sinesi-backend"]!.install!.when, ["backend/requirements.txt"]);
    assert.deepEqual(c.services["sinesi-frontend"]!.install!.when, [
      "frontend/package.json",
      "frontend/package-lock.json",
    ]);
  });
  it("zero downtime where the seeds ask for it: Polydev, Server Agent, and sinesiAI's two services on one domain", () => {
    const c = cfg();
    const proxied = Object.entries(c.services)
      .filter(([, s]) => s.proxy)
      .map(([n]) => n)
      .sort();
    assert.deepEqual(proxied, [
      "polydev-controller",
      "polydev-frontend",
      "server-agent",
      "sinesi-backend",
      "sinesi-frontend",
    ]);
    const backend = c.services["sinesi-backend"]!.proxy!;
    const frontend = c.services["sinesi-frontend"]!.proxy!;
    assert.deepEqual(
      [backend.hosts, backend.path, frontend.hosts, frontend.path],
      [["sinesi.example.net"], "/api", ["sinesi.example.net"], "/"],
    );
    // Each takes its port from PORT, which fleet sets per instance: on the command line, or (the
    // Node controller, the image) from the environment, where no fixed PORT is left.
    for (const n of ["sinesi-backend", "sinesi-frontend", "polydev-frontend"])
      assert.match(c.services[n]!.start!, /"\$PORT"/, `${n} starts on $PORT`);
    for (const n of proxied) assert.equal(c.services[n]!.env["PORT"], undefined, `${n} has no fixed PORT`);
  });
  it("pantherOS: Hetzner hosts from config, deployed in parallel", () => {
    const c = cfg();
    assert.ok(["panther-1", "panther-2"].every((h) => c.hosts[h]!.kind === "hcloud"));
    assert.equal(c.services["panther-agent"]!.rollout!.batch, "100%");
  });
  it("Polydev: controller and frontend, and VMs booting the agent's golden image", () => {
    const c = cfg();
    const vm = c.hosts["polydev-vm"]!;
    assert.ok(vm.kind === "hcloud" && vm.goldenImage === "polydev-vm-agent");
    assert.equal(c.images["polydev-vm-agent"]!.kind, "hcloud");
  });
  it("Server Agent: a Docker image, a PostgreSQL backup, migrations, tests before deploy", () => {
    const c = cfg();
    assert.equal(c.services["server-agent"]!.source.image, "server-agent");
    assert.equal(c.images["server-agent"]!.kind, "docker");
    assert.deepEqual(c.backups["server-agent-db"]!.protects, ["server-agent"]);
    assert.match(c.services["server-agent"]!.migrate!, /alembic upgrade head/);
    assert.match(c.checks[0]!.run, /pytest/);
  });
});
