import { strict as assert } from "assert";
import { buildHcloudImage } from "../../providers/image/hcloud-build";
import type { HcloudImageSpec, HcloudImageState } from "../../providers/image/hcloud-model";
import { FakeHcloud, fakeDeps } from "../support/image-hcloud-fake";

const HASH = "c0ffee".padEnd(64, "0");
const TOKEN = "hcloud-token-ABCDEFGHIJKLMNOP";

function spec(over: Partial<HcloudImageSpec> = {}): HcloudImageSpec {
  return {
    name: "agent",
    baseImage: "debian-12",
    serverType: "cx22",
    location: "fsn1",
    provisionDir: "/work/images/agent",
    run: ["10-base.sh", "20-agent.sh"],
    env: { AGENT_ROOT: "/opt/agent" },
    manifest: { "10-base.sh": "x:1", "20-agent.sh": "x:2" },
    contentHash: HASH,
    commit: "1234567890abcdef1234567890abcdef12345678",
    labels: { team: "infra" },
    check: "test -f /opt/agent/ready",
    checkTimeoutMs: 1000,
    keep: 3,
    stepTimeoutMs: 1000,
    token: TOKEN,
    apiUrl: "http://fake",
    sshPort: 22,
    ...over,
  };
}

describe("hcloud GoldenImage orchestration (Packer's flow, against an in-memory Hetzner Cloud)", () => {
  it("builder → provision → power off → snapshot → builder deleted → validator from the snapshot → key deleted", async () => {
    const api = new FakeHcloud();
    const { deps, shell, uploads } = fakeDeps(api);
    const state = await buildHcloudImage(spec(), undefined, deps);
    const [key, builder, snap, validator] = [100, 101, 103, 105];
    assert.deepEqual(api.log, [
      `createSshKey ${key}`,
      `createServer ${builder} builder from debian-12`,
      `upload 198.51.100.${builder % 250}`,
      `ssh 198.51.100.${builder % 250} provision`,
      `ssh 198.51.100.${builder % 250} generalize`,
      `shutdown ${builder}`,
      `createSnapshot ${snap} of ${builder}`,
      `deleteServer ${builder}`,
      `createServer ${validator} validator from ${snap}`,
      `ssh 198.51.100.${validator % 250} validate`,
      `deleteServer ${validator}`,
      `deleteSshKey ${key}`,
      `setImageLabels ${snap} validated=true`,
    ]);
    assert.equal(state.imageId, String(snap));
    assert.deepEqual(state.history, [String(snap)]);
    assert.equal(state.previousImageId, "");
    assert.equal(api.servers.size, 0, "no server is left running");
    assert.equal(api.keys.size, 0, "the temporary key is gone");
    assert.equal(uploads[0]!.dir, "/work/images/agent");
    assert.match(shell[0]!.script, /provision 10-base\.sh[\s\S]*provision 20-agent\.sh/);
    assert.ok(shell[1]!.script.includes("AAAAKEY1"), "generalize removes the temporary login key from the image");
    assert.ok(shell[2]!.script.includes("test -f /opt/agent/ready") && shell[2]!.script.includes(`hash=${HASH}`));
  });

  it("the labels carry the hash; servers get the temporary key and a pinned host key through cloud-init", async () => {
    const api = new FakeHcloud();
    const { deps, shell } = fakeDeps(api);
    const state = await buildHcloudImage(spec(), undefined, deps);
    assert.deepEqual(api.snapshots.get(state.imageId)!.labels, {
      team: "infra",
      "fleet.io/image": "agent",
      "fleet.io/hash": HASH.slice(0, 16),
      "fleet.io/commit": "1234567890ab",
      "fleet.io/validated": "true",
    });
    const [builder, validator] = api.created;
    assert.deepEqual(builder!.sshKeys, [100]);
    assert.deepEqual(validator!.sshKeys, [100]);
    assert.equal(builder!.labels["fleet.io/hash"], HASH.slice(0, 16));
    // Each server has its own host key, injected by cloud-init and pinned on the SSH connection.
    assert.match(builder!.userData, /ed25519_public: "ssh-ed25519 AAAAKEY2"/);
    assert.equal(shell[0]!.conn.hostKey, "ssh-ed25519 AAAAKEY2");
    assert.match(validator!.userData, /ed25519_public: "ssh-ed25519 AAAAKEY3"/);
    assert.equal(shell[2]!.conn.hostKey, "ssh-ed25519 AAAAKEY3");
    assert.equal(
      shell[0]!.conn.privateKey,
      "-----BEGIN OPENSSH PRIVATE KEY-----\nPRIV1\n-----END OPENSSH PRIVATE KEY-----",
    );
  });

  it("a builder that ignores the shutdown is powered off before the snapshot", async () => {
    const api = new FakeHcloud();
    api.ignoreShutdown = true;
    await buildHcloudImage(spec(), undefined, fakeDeps(api).deps);
    const i = api.log.indexOf("shutdown 101");
    assert.deepEqual(api.log.slice(i, i + 2), ["shutdown 101", "poweroff 101"]);
    assert.match(api.log[i + 2]!, /^createSnapshot \d+ of 101$/);
  });

  it("a failed provision script deletes the builder and the temporary key, and says why (secrets redacted)", async () => {
    const api = new FakeHcloud();
    const { deps } = fakeDeps(api, (step) =>
      step === "provision"
        ? {
            code: 3,
            stderr: `fleet-phase: provision 20-agent.sh\ntoken was ${TOKEN}\nprovision script 20-agent.sh failed with exit code 3`,
          }
        : {},
    );
    await assert.rejects(buildHcloudImage(spec(), undefined, deps), (err: Error) => {
      assert.match(err.message, /\[builder 101\] provision failed with exit code 3/);
      assert.match(err.message, /provision script 20-agent\.sh failed/);
      assert.ok(!err.message.includes(TOKEN), "the API token is redacted");
      return true;
    });
    assert.ok(api.log.includes("deleteServer 101"), "the builder is deleted");
    assert.ok(api.log.includes("deleteSshKey 100"), "the temporary key is deleted");
    assert.equal(api.snapshots.size, 0, "no snapshot was taken");
    assert.equal(api.servers.size, 0);
  });

  it("a failed validation leaves the previous snapshot active; the validator and the key are deleted; the new one stays unvalidated", async () => {
    const api = new FakeHcloud([{ id: "7", labels: { "fleet.io/image": "agent", "fleet.io/validated": "true" } }]);
    const olds = {
      ...spec(),
      imageId: "7",
      previousImageId: "",
      history: ["7"],
      builtAt: "",
      pruned: [],
    } as HcloudImageState;
    const { deps } = fakeDeps(api, (step) =>
      step === "validate" ? { code: 1, stdout: "agent: inactive (failed)" } : {},
    );
    await assert.rejects(buildHcloudImage(spec({ contentHash: "d".repeat(64) }), olds, deps), (err: Error) => {
      assert.match(err.message, /snapshot 103 failed validation on server 105 \(exit code 1\)/);
      assert.match(err.message, /agent: inactive \(failed\)/);
      assert.match(
        err.message,
        /The active snapshot \(7\) stays active; 103 is kept, labelled fleet\.io\/validated=false/,
      );
      return true;
    });
    assert.ok(api.log.includes("deleteServer 105") && api.log.includes("deleteSshKey 100"));
    assert.equal(api.snapshots.get("103")!.labels["fleet.io/validated"], "false");
    assert.ok(api.snapshots.has("7"), "the active snapshot is untouched");
    assert.ok(!api.log.some((l) => l.startsWith("deleteImage")), "no retention ran");
  });

  it("retention keeps the newest activations and the previous one, never a snapshot a server was made from", async () => {
    const ours = (id: string) => ({ id, labels: { "fleet.io/image": "agent" } });
    const api = new FakeHcloud(
      [ours("1"), ours("2"), ours("3"), ours("4"), ours("failed"), { id: "9", labels: { "fleet.io/image": "other" } }],
      ["1"],
    );
    const olds = {
      ...spec(),
      imageId: "4",
      previousImageId: "3",
      history: ["4", "3", "2", "1"],
      builtAt: "",
      pruned: [],
    } as HcloudImageState;
    const state = await buildHcloudImage(spec({ contentHash: "e".repeat(64) }), olds, fakeDeps(api).deps);
    assert.deepEqual(state.history, [state.imageId, "4", "3"]);
    assert.equal(state.previousImageId, "4");
    assert.deepEqual(state.pruned.sort(), ["2", "failed"]);
    assert.deepEqual(
      [...api.snapshots.keys()].sort(),
      ["1", "3", "4", "9", state.imageId].sort(),
      "1 is in use, 9 is another image's",
    );
  });
});
