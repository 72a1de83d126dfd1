import { strict as assert } from "assert";
import { execFileSync, spawnSync } from "child_process";
import { bootstrapScript, diskGuard, factsScript } from "../../commands/host";
import { cloudInitUserData } from "../../commands/cloud-init";
import { bootstrapSpec, firewallRules } from "../../components/host";
import { diffHostBootstrap } from "../../decisions/host-diff";
import { UNKNOWN } from "../../decisions/service-diff";
import { parseFleetConfig } from "../../config/schema";

const syntaxOk = (script: string) => execFileSync("/bin/sh", ["-n"], { input: script });

describe("Host: builders and decisions", () => {
  it("bootstrap, facts and the disk guard are valid POSIX sh", () => {
    syntaxOk(
      bootstrapScript(bootstrapSpec({ deployUserKeys: ["ssh-ed25519 AAAAC3Nza x"], packages: ["curl", "git"] }), "abc"),
    );
    syntaxOk(factsScript("/srv/fleet"));
    syntaxOk(diskGuard("/srv/fleet/web", 512, 69));
  });

  it("bootstrap defaults: deploy user with sudo, /srv/fleet, curl, 200M journal, UTC", () => {
    assert.deepEqual(bootstrapSpec({}), {
      deployUser: "deploy",
      deployUserKeys: [],
      sudo: true,
      root: "/srv/fleet",
      packages: ["curl"],
      journalMaxUse: "200M",
      timezone: "UTC",
    });
  });

  it("every bootstrap step is named, so a failure says where it stopped", () => {
    const script = bootstrapScript(bootstrapSpec({}), "abc");
    for (const step of ["user", "directories", "packages", "journald", "timezone", "record"]) {
      assert.match(script, new RegExp(`^phase ${step}$`, "m"));
    }
  });

  it("the disk guard refuses with both numbers, measured on the nearest existing directory", () => {
    const r = spawnSync("/bin/sh", ["-c", diskGuard("/tmp/does/not/exist", 1e12, 69) + "\necho passed"], {
      encoding: "utf8",
    });
    assert.equal(r.status, 69);
    assert.match(
      r.stderr,
      /^only \d+ MiB free on \/tmp; fleet needs at least 1000000000000 MiB there to deploy \(minFreeDisk\)/,
    );
    assert.equal(
      spawnSync("/bin/sh", ["-c", diskGuard("/tmp", 1, 69) + "\necho passed"], { encoding: "utf8" }).stdout,
      "passed\n",
    );
  });

  it("cloud-init installs exactly fleet's host key", () => {
    const text = cloudInitUserData(
      "-----BEGIN OPENSSH PRIVATE KEY-----\nAAA\n-----END OPENSSH PRIVATE KEY-----\n",
      "ssh-ed25519 AAAAC3 x",
    );
    assert.match(text, /^#cloud-config\n/);
    assert.match(text, /^ssh_deletekeys: true$/m);
    assert.match(text, /^ssh_genkeytypes: \[\]$/m);
    assert.match(text, /^ {2}ed25519_private: \|\n {4}-----BEGIN OPENSSH PRIVATE KEY-----\n {4}AAA\n {4}-----END/m);
    assert.match(text, /^ {2}ed25519_public: "ssh-ed25519 AAAAC3 x"$/m);
  });

  it("the firewall allows SSH only from the configured CIDRs, plus the extra rules", () => {
    const rules = firewallRules({
      sshFrom: ["203.0.113.7/32"],
      inbound: [{ protocol: "tcp", port: "443", sourceIps: ["0.0.0.0/0"] }],
    });
    assert.deepEqual(rules[0], {
      direction: "in",
      protocol: "tcp",
      port: "22",
      sourceIps: ["203.0.113.7/32"],
      description: "SSH (fleet)",
    });
    assert.equal(rules.filter((r) => r.port === "22").length, 1);
    assert.throws(() => firewallRules({ sshFrom: [] }), /sshFrom must name at least one CIDR/);
  });

  it("bootstrap diff: new script → update; new address → replace; a rotated key → nothing", () => {
    const olds = { connection: { host: "a", port: 22, privateKey: "k1" }, scriptSha: "s1", facts: {} };
    assert.deepEqual(
      diffHostBootstrap(olds, { connection: { host: "a", port: 22, privateKey: "k2" }, scriptSha: "s1" }),
      { changes: false, replaces: [], recordOnly: false },
    );
    assert.deepEqual(diffHostBootstrap(olds, { connection: { host: "a", port: 22 }, scriptSha: "s2" }), {
      changes: true,
      replaces: [],
      recordOnly: false,
    });
    assert.deepEqual(diffHostBootstrap(olds, { connection: { host: "b", port: 22 }, scriptSha: "s1" }), {
      changes: true,
      replaces: ["connection"],
      recordOnly: false,
    });
    assert.deepEqual(diffHostBootstrap(olds, { connection: UNKNOWN, scriptSha: "s1" }), {
      changes: true,
      replaces: ["connection"],
      recordOnly: false,
    });
    // Outputs stored with the rendered script (before docs/state.md): recorded again without it.
    const withScript = { ...olds, script: "set -eu\n…" };
    assert.deepEqual(diffHostBootstrap(withScript, { connection: { host: "a", port: 22 }, scriptSha: "s1" }), {
      changes: true,
      replaces: [],
      recordOnly: true,
    });
    assert.deepEqual(diffHostBootstrap(withScript, { connection: { host: "a", port: 22 }, scriptSha: "s2" }), {
      changes: true,
      replaces: [],
      recordOnly: false,
    });
  });

  it("config: hcloud hosts validate by path; SSH must be limited to CIDRs", () => {
    const base = {
      hosts: {
        vps: {
          kind: "hcloud",
          serverType: "cx22",
          location: "fsn1",
          image: "debian-12",
          sshFrom: ["0.0.0.0"],
          publicKeyFile: "/k.pub",
          privateKeyFile: "/k",
        },
      },
    };
    assert.throws(() => parseFleetConfig(base), /hosts\.vps\.sshFrom\.0: must be a CIDR/);
    const ok = parseFleetConfig({ hosts: { vps: { ...base.hosts.vps, sshFrom: ["203.0.113.7/32"] } } });
    assert.equal(ok.hosts["vps"]!.kind, "hcloud");
    assert.throws(
      () =>
        parseFleetConfig({
          hosts: { a: { address: "127.0.0.1", hostKey: "SHA256:x", privateKeyFile: "/k", jump: "nope" } },
        }),
      /hosts\.a\.jump: "nope" is not another host/,
    );
  });
});
