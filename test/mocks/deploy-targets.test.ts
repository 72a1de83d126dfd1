import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { CHILD_SUFFIXES, TOKENS } from "../../components/tokens";
import { parseFleetConfig } from "../../config/schema";
import { hostOfServiceResource } from "../../model/resource-names";
import { deployTargets, type DeploySelection } from "../../operate/deploy-targets";
import { allRegistrations, dependenciesOf, installMocks, placementOf, settle } from "../support/mocks";

/**
 * operate/deploy-targets.ts against the program itself: index.ts run under mocks with hosts of
 * every kind, images of both kinds, a backup and services on one and on several hosts. For every
 * selection, what the targets match (as Pulumi matches them) must hold each targeted
 * component's children, each targeted resource's parent and every dependency it waits for (else
 * `pulumi up --target` refuses an "untargeted create" on a first deploy); and every component
 * URN must be one the program registers (else "could not be found").
 */
const FIXTURES = path.resolve(__dirname, "..", "fixtures", "images");
const APP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd";

function files(): { key: string; pub: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-targets-"));
  const key = path.join(dir, "id");
  fs.writeFileSync(key, "-----BEGIN OPENSSH PRIVATE KEY-----\nKEY\n-----END OPENSSH PRIVATE KEY-----\n");
  fs.writeFileSync(`${key}.pub`, "ssh-ed25519 AAAAC3NzaLOGIN fleet\n");
  return { key, pub: `${key}.pub` };
}

function fleetConfig(): Record<string, unknown> {
  const { key, pub } = files();
  const existing = (n: number, extra: Record<string, unknown> = {}) => ({
    address: `127.0.0.${n}`,
    privateKeyFile: key,
    hostKey: HOST_KEY,
    ...extra,
  });
  const svc = (where: Record<string, unknown>, port: number, extra: Record<string, unknown> = {}) => ({
    ...where,
    source: { path: APP },
    start: "python3 app.py",
    health: { url: `http://127.0.0.1:${port}/api/health` },
    ...extra,
  });
  return {
    hosts: {
      web1: existing(11, { bootstrap: {} }),
      "web1-b": existing(12),
      db: existing(13),
      cloud: {
        kind: "hcloud",
        serverType: "cx22",
        location: "fsn1",
        goldenImage: "base",
        sshFrom: ["198.51.100.7/32"],
        privateKeyFile: key,
        publicKeyFile: pub,
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
        validate: { url: "http://127.0.0.1:8080/" },
        hosts: ["web1-b", "db"],
      },
    },
    services: {
      api: svc({ hosts: ["web1", "web1-b"], rollout: { batch: 1 } }, 18001, { restoreOnRollback: true }),
      "api-v2": svc({ host: "web1" }, 18002),
      worker: { ...svc({ host: "web1-b" }, 18003), source: { image: "web" } },
      agent: svc({ host: "cloud" }, 18004),
    },
    backups: { appdb: { host: "db", sqlite: { path: "/srv/app.db" }, protects: ["api"] } },
  };
}

interface Resource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  /** The engine's URN of its parent, undefined for a top-level one. */
  readonly parent?: string;
  readonly dependencies: readonly string[];
}

const STACK_TYPE = "pulumi:pulumi:Stack";

/**
 * The registrations with the URNs the engine gives them: the parent's qualified type, `$`, the
 * type (the root stack's type is left out), as in a real state.
 */
function resources(): Resource[] {
  const byMockUrn = new Map<string, { urn: string; qualified: string }>();
  const out: Resource[] = [];
  for (const r of allRegistrations()) {
    const at = placementOf(r.type, r.name);
    const parent = at.parent ? byMockUrn.get(at.parent) : undefined;
    if (at.parent && !parent && !at.parent.includes(`::${STACK_TYPE}::`))
      throw new Error(`${r.type} ${r.name}: parent ${at.parent} registered after it`);
    const qualified = parent ? `${parent.qualified}$${r.type}` : r.type;
    const urn = `urn:pulumi:test::fleet::${qualified}::${r.name}`;
    if (at.urn) byMockUrn.set(at.urn, { urn, qualified });
    out.push({ type: r.type, name: r.name, urn, ...(parent ? { parent: parent.urn } : {}), dependencies: [] });
  }
  const engineUrn = (mockUrn: string) => byMockUrn.get(mockUrn)?.urn ?? mockUrn;
  return out.map((r) => ({ ...r, dependencies: dependenciesOf(r.type, r.name).map(engineUrn) }));
}

/** What `pulumi up --target` matches (pkg/resource/deploy UrnTargets.Contains, 3.248.0). */
function matches(targets: readonly string[], urn: string): boolean {
  return targets.some((t) => {
    if (!t.includes("*")) return t === urn;
    const quote = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const re = t
      .split("**")
      .map((seg) => seg.split("*").map(quote).join("[^:]*"))
      .join(".*");
    return new RegExp(`^${re}$`).test(urn);
  });
}

const KIND_OF_TYPE = Object.fromEntries(Object.entries(TOKENS).map(([k, t]) => [t, k])) as Record<
  string,
  keyof typeof TOKENS
>;

describe("deploy --hosts/--services targets against index.ts under Pulumi mocks", function () {
  this.timeout(60_000);
  let all: Resource[];
  let cfg: ReturnType<typeof parseFleetConfig>;

  before(async () => {
    const raw = fleetConfig();
    cfg = parseFleetConfig(raw);
    await installMocks({
      newResource: (args) => {
        if (args.type === "pulumi-nodejs:dynamic/fleet:HcloudImage") return { id: "777", state: { imageId: "777" } };
        if (args.type === "pulumi-nodejs:dynamic/fleet:DockerImage")
          return { state: { imageId: "sha256:" + "c".repeat(64), tags: ["web:x"], history: [] } };
        if (args.type === "pulumi-nodejs:dynamic/fleet:HostKey")
          return { state: { publicKey: "ssh-ed25519 AAAAC3NzaHOST", privateKey: "P" } };
        if (args.type === "hcloud:index/server:Server") return { state: { ipv4Address: "203.0.113.20" } };
        if (args.type === "hcloud:index/firewall:Firewall") return { id: "4242" };
        return undefined;
      },
    });
    pulumi.runtime.setAllConfig(
      {
        ...Object.fromEntries(Object.entries(raw).map(([k, v]) => [`fleet:${k}`, JSON.stringify(v)])),
        "hcloud:token": "hcloud-api-token",
      },
      ["hcloud:token"],
    );
    const entry = require.resolve("../../index");
    delete require.cache[entry];
    require(entry);
    await settle();
    all = resources();
  });

  it("every child a component registers is named <component>-<suffix>, its suffix listed in CHILD_SUFFIXES", () => {
    const children = all.filter((r) => r.parent);
    assert.ok(children.length >= 10, `children registered: ${children.map((c) => c.name).join(", ")}`);
    for (const c of children) {
      const parent = all.find((r) => r.urn === c.parent)!;
      const kind = KIND_OF_TYPE[parent.type];
      assert.ok(kind, `${c.name}: its parent ${parent.type} is one of TOKENS`);
      const suffixes: readonly string[] = Object.values(CHILD_SUFFIXES[kind]);
      assert.ok(
        suffixes.some((s) => c.name === `${parent.name}-${s}`),
        `${c.type} ${c.name} under ${parent.name}: suffix one of ${suffixes.join(", ")}`,
      );
    }
  });

  const selections: DeploySelection[] = [
    { hosts: ["web1"] },
    { hosts: ["web1-b"] },
    { hosts: ["db"] },
    { hosts: ["cloud"] },
    { services: ["api"] },
    { services: ["api-v2"] },
    { services: ["worker"] },
    { services: ["agent"] },
    { hosts: ["web1-b"], services: ["api"] },
    { hosts: ["web1", "cloud"], services: ["api", "agent"] },
  ];
  for (const selection of selections) {
    it(`${JSON.stringify(selection)}: children, parents and dependencies all targeted; every component found`, () => {
      const t = deployTargets(cfg, "test", "fleet", selection)!;
      const urns = new Set(all.map((r) => r.urn));
      for (const c of t.components) assert.ok(urns.has(c.urn), `${c.urn} is registered (a literal must be found)`);
      const targeted = all.filter((r) => matches(t.targets, r.urn));
      const inT = new Set(targeted.map((r) => r.urn));
      for (const c of t.components)
        for (const child of all.filter((r) => r.parent === c.urn))
          assert.ok(inT.has(child.urn), `${c.name}'s child ${child.name} is targeted`);
      for (const r of targeted) {
        if (r.parent) assert.ok(inT.has(r.parent), `${r.name}: its parent ${r.parent} is targeted`);
        const own = r.type === TOKENS.service ? r : all.find((p) => p.urn === r.parent);
        const service = own?.type === TOKENS.service ? own.name.split("@")[0]! : undefined;
        for (const dep of r.dependencies) {
          if (inT.has(dep)) continue;
          // A service's earlier rollout batch on another host: left to its state (see deployTargets).
          const depName = dep.slice(dep.lastIndexOf("::") + 2).replace(/-release$/, "");
          const sameService = service !== undefined && hostOfServiceResource(service, depName) !== undefined;
          assert.ok(sameService, `${r.name} depends on ${dep}: targeted`);
        }
      }
      // Nothing else: every targeted resource is a component named or needed, or one of its children.
      const components = new Set(t.components.map((c) => c.urn));
      for (const r of targeted) assert.ok(components.has(r.urn) || components.has(r.parent ?? ""), r.urn);
    });
  }

  it("--hosts web1 leaves web1-b's service resources alone (and --services api-v2 every other service)", () => {
    const names = (s: DeploySelection) =>
      all.filter((r) => matches(deployTargets(cfg, "test", "fleet", s)!.targets, r.urn)).map((r) => r.name);
    assert.ok(!names({ hosts: ["web1"] }).some((n) => n.startsWith("api@web1-b") || n.startsWith("worker")));
    assert.deepEqual(
      names({ services: ["api-v2"] }).filter((n) => !n.startsWith("web1")),
      ["api-v2", "api-v2-release"],
    );
  });
});
