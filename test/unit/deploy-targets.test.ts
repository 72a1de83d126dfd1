import { strict as assert } from "assert";
import * as path from "path";
import { parseFleetConfig } from "../../config/schema";
import { isFleetError } from "../../model/errors";
import { componentLabel, deployTargets, type DeploySelection } from "../../operate/deploy-targets";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const FIXTURES = path.resolve(__dirname, "..", "fixtures", "images");

const existing = (n: number) => ({ address: `127.0.0.${n}`, privateKeyFile: "/k", hostKey: KEY });
const svc = (where: { host: string } | { hosts: string[] }, extra: Record<string, unknown> = {}) => ({
  ...where,
  source: { path: "." },
  start: "true",
  health: { url: "http://127.0.0.1:1/h" },
  ...extra,
});

/**
 * Names that share prefixes on purpose (`api`/`api-v2`, `web1`/`web1-b`): a target for one must
 * not match the other's resources.
 */
const CFG = parseFleetConfig({
  hosts: {
    web1: { ...existing(11), bootstrap: {} },
    "web1-b": existing(12),
    db: existing(13),
    cloud: {
      kind: "hcloud",
      serverType: "cx22",
      location: "fsn1",
      goldenImage: "base",
      sshFrom: ["198.51.100.7/32"],
      privateKeyFile: "/k",
      publicKeyFile: "/k.pub",
    },
  },
  images: {
    base: {
      kind: "hcloud",
      baseImage: "debian-12",
      serverType: "cx22",
      location: "fsn1",
      provision: { dir: path.join(FIXTURES, "provision") },
      validate: { check: "true" },
    },
    web: {
      kind: "docker",
      context: path.join(FIXTURES, "web"),
      validate: { url: "http://x/" },
      hosts: ["web1-b", "db"],
    },
  },
  services: {
    api: svc({ hosts: ["web1", "web1-b"] }),
    "api-v2": svc({ host: "web1" }),
    worker: svc({ host: "web1-b" }, { source: { image: "web" } }),
    agent: svc({ host: "cloud" }),
  },
  backups: { appdb: { host: "db", sqlite: { path: "/a.db" }, protects: ["api"] } },
});

const URN = "urn:pulumi:prod::fleet::";

function targets(selection: DeploySelection) {
  const t = deployTargets(CFG, "prod", "fleet", selection);
  assert.ok(t, "targets");
  return t;
}

/** What `pulumi up --target` matches (pkg/resource/deploy UrnTargets.Contains, 3.248.0). */
function matches(targetList: readonly string[], urn: string): boolean {
  return targetList.some((t) => {
    if (!t.includes("*")) return t === urn;
    const re = t
      .split("**")
      .map((seg) =>
        seg
          .split("*")
          .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
          .join("[^:]*"),
      )
      .join(".*");
    return new RegExp(`^${re}$`).test(urn);
  });
}

/** Every resource such a stack holds (and some it might: an old bootstrap, a removed service). */
const ALL = [
  "fleet:index:Host::web1",
  "fleet:index:Host$pulumi-nodejs:dynamic/fleet:HostBootstrap::web1-bootstrap",
  "fleet:index:Host::web1-b",
  "fleet:index:Host$pulumi-nodejs:dynamic/fleet:HostBootstrap::web1-b-bootstrap",
  "fleet:index:Host::db",
  "fleet:index:Host::cloud",
  "fleet:index:Host$pulumi-nodejs:dynamic/fleet:HostKey::cloud-hostkey",
  "fleet:index:Host$hcloud:index/sshKey:SshKey::cloud-sshkey",
  "fleet:index:Host$hcloud:index/firewall:Firewall::cloud-firewall",
  "fleet:index:Host$hcloud:index/server:Server::cloud-server",
  "fleet:index:Host$pulumi-nodejs:dynamic/fleet:HostBootstrap::cloud-bootstrap",
  "fleet:index:GoldenImage::base",
  "fleet:index:GoldenImage$pulumi-nodejs:dynamic/fleet:HcloudImage::base-snapshot",
  "fleet:index:GoldenImage::web",
  "fleet:index:GoldenImage$pulumi-nodejs:dynamic/fleet:DockerImage::web-image",
  "fleet:index:DatabaseBackup::appdb",
  "fleet:index:DatabaseBackup$pulumi-nodejs:dynamic/fleet:BackupSet::appdb-set",
  "fleet:index:Service::api@web1",
  "fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::api@web1-release",
  "fleet:index:Service::api@web1-b",
  "fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::api@web1-b-release",
  "fleet:index:Service::api-v2",
  "fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::api-v2-release",
  "fleet:index:Service::api-old",
  "fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::api-old-release",
  "fleet:index:Service::worker",
  "fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::worker-release",
  "fleet:index:Service::agent",
  "fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::agent-release",
  "pulumi:providers:pulumi-nodejs::default",
].map((u) => URN + u);

/** The short form (`Host web1-bootstrap`… as the tail) of what the targets match among ALL. */
function matched(selection: DeploySelection): string[] {
  const t = targets(selection);
  return ALL.filter((u) => matches(t.targets, u)).map((u) => u.slice(u.lastIndexOf("::") + 2));
}

function usageError(selection: DeploySelection, message: RegExp): void {
  assert.throws(
    () => deployTargets(CFG, "prod", "fleet", selection),
    (err: unknown) => isFleetError(err) && err.kind === "config" && message.test(err.message),
  );
}

describe("operate/deploy-targets.ts: npm run deploy -- --hosts/--services as pulumi up --target", () => {
  it("no selection: the whole stack (no targets)", () => {
    assert.equal(deployTargets(CFG, "prod", "fleet", {}), undefined);
  });

  it("components by literal URN, children by one glob per child suffix", () => {
    const t = targets({ services: ["api-v2"] });
    assert.deepEqual(t.targets, [
      `${URN}fleet:index:Host::web1`,
      `${URN}fleet:index:Host$**::web1-bootstrap`,
      `${URN}fleet:index:Host$**::web1-hostkey`,
      `${URN}fleet:index:Host$**::web1-sshkey`,
      `${URN}fleet:index:Host$**::web1-firewall`,
      `${URN}fleet:index:Host$**::web1-server`,
      `${URN}fleet:index:Service::api-v2`,
      `${URN}fleet:index:Service$**::api-v2-release`,
    ]);
    assert.deepEqual(
      t.components.map((c) => [componentLabel(c), c.selected]),
      [
        ["Host web1", false],
        ["Service api-v2", true],
      ],
    );
  });

  it("--hosts web1: its Host (and bootstrap), the services on it, and what those need; nothing of web1-b's", () => {
    assert.deepEqual(matched({ hosts: ["web1"] }), [
      "web1",
      "web1-bootstrap",
      "db", // appdb's host
      "appdb",
      "appdb-set", // protects api
      "api@web1",
      "api@web1-release",
      "api-v2",
      "api-v2-release",
    ]);
  });

  it("--hosts web1-b: a docker image's hosts come with it (it ships to them at once)", () => {
    assert.deepEqual(matched({ hosts: ["web1-b"] }), [
      "web1-b",
      "web1-b-bootstrap",
      "db",
      "web",
      "web-image",
      "appdb",
      "appdb-set",
      "api@web1-b",
      "api@web1-b-release",
      "worker",
      "worker-release",
    ]);
  });

  it("--services api: every host it runs on; api-v2 and the removed api-old are left alone", () => {
    const names = matched({ services: ["api"] });
    assert.deepEqual(names, [
      "web1",
      "web1-bootstrap",
      "web1-b",
      "web1-b-bootstrap",
      "db",
      "appdb",
      "appdb-set",
      "api@web1",
      "api@web1-release",
      "api@web1-b",
      "api@web1-b-release",
    ]);
  });

  it("--services agent: an hcloud host with every child, and the golden image it boots from", () => {
    assert.deepEqual(matched({ services: ["agent"] }), [
      "cloud",
      "cloud-hostkey",
      "cloud-sshkey",
      "cloud-firewall",
      "cloud-server",
      "cloud-bootstrap",
      "base",
      "base-snapshot",
      "agent",
      "agent-release",
    ]);
  });

  it("--hosts with --services: the intersection; the named hosts' Hosts even with no service on them", () => {
    assert.deepEqual(matched({ hosts: ["web1-b"], services: ["api"] }), [
      "web1-b",
      "web1-b-bootstrap",
      "db",
      "appdb",
      "appdb-set",
      "api@web1-b",
      "api@web1-b-release",
    ]);
    assert.deepEqual(matched({ hosts: ["db"] }), ["db"], "no service on db: its Host alone");
    assert.deepEqual(
      targets({ hosts: ["db", "web1"], services: ["api-v2"] }).components.map(componentLabel),
      ["Host web1", "Host db", "Service api-v2"],
      "a named host stays targeted",
    );
  });

  it("the URN names the stack by its last part (org/project/stack) and the project", () => {
    const t = deployTargets(CFG, "acme/fleet/prod", "infra", { hosts: ["db"] });
    assert.deepEqual(t?.targets.slice(0, 2), [
      "urn:pulumi:prod::infra::fleet:index:Host::db",
      "urn:pulumi:prod::infra::fleet:index:Host$**::db-bootstrap",
    ]);
  });

  it("unknown names, empty lists and a service on none of --hosts are usage errors naming the known ones", () => {
    usageError({ hosts: ["web9"] }, /unknown host "web9": the stack's hosts are web1, web1-b, db, cloud/);
    usageError({ services: ["nope"] }, /unknown service "nope": the stack's services are api, api-v2, worker, agent/);
    usageError({ hosts: ["web1"], services: ["nope"] }, /unknown service "nope"/);
    usageError({ hosts: [] }, /--hosts names no host/);
    usageError({ services: [] }, /--services names no service/);
    usageError({ hosts: ["db"], services: ["api"] }, /service "api" runs on web1, web1-b: none of --hosts db/);
  });
});
