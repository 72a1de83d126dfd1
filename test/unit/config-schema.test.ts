import { strict as assert } from "assert";
import { FleetConfigError, parseFleetConfig } from "../../config/schema";

const good = () => ({
  hosts: { web1: { address: "127.0.0.11", privateKeyFile: "/k", hostKey: "ssh-ed25519 AAAA" } },
  services: {
    web: {
      host: "web1",
      source: { path: "./app" },
      start: "python3 app.py",
      health: { url: "http://127.0.0.1:8080/health" },
    },
  },
});

function problems(raw: unknown): string[] {
  try {
    parseFleetConfig(raw);
  } catch (err) {
    assert.ok(err instanceof FleetConfigError);
    return err.problems;
  }
  assert.fail("expected a FleetConfigError");
}

describe("config/schema", () => {
  it("accepts a minimal config and fills the documented defaults", () => {
    const cfg = parseFleetConfig(good());
    const web1 = cfg.hosts["web1"]!;
    assert.ok(web1.kind === "existing", "kind defaults to existing");
    assert.equal(web1.port, 22);
    assert.equal(cfg.hosts["web1"]!.user, "root");
    const web = cfg.services["web"]!;
    assert.equal(web.keepReleases, 5);
    assert.equal(web.root, "/srv/fleet");
    assert.equal(web.health.expectStatus, 200);
    assert.equal(web.health.timeout, "30s");
    assert.deepEqual(web.env, {});
  });

  it("names the bad field by its path and says what to do", () => {
    const cfg = good();
    (cfg.services.web.health as { url: string }).url = "ftp://nope";
    assert.deepEqual(problems(cfg), ["services.web.health.url: must be an http(s) URL"]);
  });

  it("reports every problem at once", () => {
    const cfg = good() as any;
    cfg.services.web.host = "web9";
    cfg.services.web.keepReleases = 1;
    cfg.services.web.env = { "BAD-NAME": "x", FLEET_RELEASE: "y" };
    cfg.services.web.start = "line1\nline2";
    const p = problems(cfg);
    assert.ok(
      p.some((x) => x.startsWith('services.web.host: unknown host "web9"; fleet:hosts has: web1')),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.web.keepReleases: must be at least 2")),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.web.env.BAD-NAME")),
      p.join("\n"),
    );
    assert.ok(
      p.some((x) => x.startsWith("services.web.start: start must be a single line")),
      p.join("\n"),
    );
  });

  it("reports field errors and cross-references together", () => {
    const cfg = good() as any;
    cfg.hosts.web1.port = 70000;
    cfg.services.web.host = "web9";
    assert.deepEqual(problems(cfg), [
      "hosts.web1.port: Too big: expected number to be <=65535",
      'services.web.host: unknown host "web9"; fleet:hosts has: web1',
    ]);
  });

  it("refuses unknown keys (typos) instead of ignoring them", () => {
    const cfg = good() as any;
    cfg.services.web.keepRelease = 3;
    assert.ok(problems(cfg).some((x) => x.includes("keepRelease")));
  });

  it("needs exactly one host key source and exactly one private key source", () => {
    const cfg = good() as any;
    delete cfg.hosts.web1.hostKey;
    delete cfg.hosts.web1.privateKeyFile;
    const p = problems(cfg);
    assert.ok(p.some((x) => x.startsWith("hosts.web1.hostKey: give exactly one of hostKey")));
    assert.ok(p.some((x) => x.startsWith("hosts.web1.privateKeyFile: give exactly one of privateKeyFile")));
    const withSecretKey = { ...good(), privateKeys: { web1: "-----BEGIN" } } as any;
    delete withSecretKey.hosts.web1.privateKeyFile;
    assert.doesNotThrow(() => parseFleetConfig(withSecretKey));
  });

  it("source is exactly one of git and path; paths stay inside the release", () => {
    const cfg = good() as any;
    cfg.services.web.source = { git: "../x", path: "./y" };
    cfg.services.web.install = { run: "pip install", when: ["../secrets"] };
    const p = problems(cfg);
    assert.ok(p.some((x) => x.startsWith("services.web.source: give exactly one of git")));
    assert.ok(p.some((x) => x.startsWith("services.web.install.when.0: must be a path inside the release")));
  });

  it("secretEnv must name configured services and not repeat env keys", () => {
    const cfg = { ...good(), secretEnv: { nope: { A: "1" } } } as any;
    assert.ok(problems(cfg).some((x) => x.startsWith('secretEnv.nope: no service "nope"')));
    const dup = { ...good(), secretEnv: { web: { TOKEN: "s" } } } as any;
    dup.services.web.env = { TOKEN: "plain" };
    assert.ok(problems(dup).some((x) => x.startsWith("services.web.env.TOKEN: is also in fleet:secretEnv")));
  });

  it("a missing fleet:hosts is reported, not crashed on", () => {
    assert.ok(problems({}).some((x) => x.startsWith("hosts:")));
  });
});
