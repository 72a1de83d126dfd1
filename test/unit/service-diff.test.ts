import { strict as assert } from "assert";
import { UNKNOWN, canonical, diffService, shouldPrewarm } from "../../decisions/service-diff";

const base = {
  name: "web",
  root: "/srv/fleet",
  unitName: "web",
  connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "k1", hostKey: "ssh-ed25519 AAAA" },
  releaseId: "abc123abc123",
  commit: "abc123abc123abc123abc123abc123abc123abc1",
  unit: "[Unit]\n",
  env: { PORT: "8080" },
  secretEnv: { TOKEN: "t" },
  health: { url: "http://127.0.0.1:8080/", expectStatus: 200, timeoutMs: 30000, intervalMs: 100 },
  start: "python3 app.py",
  runAs: "root",
  keepReleases: 5,
  source: { kind: "path", path: "/a", exclude: [] },
  breakStaleLock: false,
  stepTimeoutMs: 600000,
};
// Old outputs carry extra fields the provider derived.
const olds = { ...base, host: "127.0.0.11", deployedAt: "2026-01-01T00:00:00Z", retainedReleases: ["abc123abc123"] };

describe("decisions/service-diff", () => {
  it("no change when nothing that matters changed (derived outputs are ignored)", () => {
    assert.deepEqual(diffService(olds, base), {
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
      changedKeys: [],
      recordOnly: false,
    });
  });

  it("a new release is an update, not a replace", () => {
    const d = diffService(olds, { ...base, releaseId: "def456def456", commit: "def456" });
    assert.equal(d.changes, true);
    assert.deepEqual(d.replaces, []);
    assert.deepEqual(d.changedKeys, ["releaseId", "commit"]);
  });

  it("unit, env, secretEnv and health changes are updates", () => {
    for (const change of [
      { unit: "x" },
      { env: { PORT: "1" } },
      { secretEnv: { TOKEN: "u" } },
      { health: { ...base.health, expectStatus: 204 } },
    ]) {
      const d = diffService(olds, { ...base, ...change });
      assert.equal(d.changes, true, JSON.stringify(change));
      assert.deepEqual(d.replaces, []);
    }
  });

  it("another host replaces (create first); same host with a new name deletes first", () => {
    const moved = diffService(olds, { ...base, connection: { ...base.connection, host: "127.0.0.12" } });
    assert.deepEqual(moved.replaces, ["connection"]);
    assert.equal(moved.deleteBeforeReplace, false);
    const renamedRoot = diffService(olds, { ...base, root: "/opt/fleet" });
    assert.deepEqual(renamedRoot.replaces, ["root"]);
    assert.equal(renamedRoot.deleteBeforeReplace, true, "same host and unit name would collide");
    // Same host, new unit name: the folder is the same, so creating first would let the old
    // resource's delete remove what the new one deployed (issue 29).
    const renamedUnit = diffService(olds, { ...base, unitName: "other" });
    assert.deepEqual(renamedUnit.replaces, ["unitName"]);
    assert.equal(renamedUnit.deleteBeforeReplace, true);
  });

  it("timeouts or the source's local path are no change (a rotated key is recorded: see below)", () => {
    const d = diffService(olds, {
      ...base,
      stepTimeoutMs: 1,
      breakStaleLock: true,
      source: { kind: "path", path: "/elsewhere", exclude: [] },
    });
    assert.equal(d.changes, false);
  });

  it("unknown values during preview count as changes (and as replacement when they are the host)", () => {
    assert.equal(diffService(olds, { ...base, releaseId: UNKNOWN }).changes, true);
    const d = diffService(olds, { ...base, connection: UNKNOWN });
    assert.deepEqual(d.replaces, ["connection"]);
  });

  it("canonical JSON ignores key order and undefined", () => {
    assert.equal(canonical({ b: 1, a: [1, { d: 2, c: undefined }] }), canonical({ a: [1, { d: 2 }], b: 1 }));
  });
});

describe("shouldPrewarm (Check opens the connection ahead of a deploy)", () => {
  const connection = { host: "127.0.0.11", port: 22, user: "root", privateKey: "k", hostKey: "SHA256:x" };
  const spec = { name: "api", releaseId: "abc123def", connection };

  it("a new resource prewarms", () => {
    assert.equal(shouldPrewarm({}, spec), true);
  });
  it("a new release prewarms; the same inputs do not (a no-op opens no connection)", () => {
    assert.equal(shouldPrewarm(spec, { ...spec, releaseId: "fff999aaa" }), true);
    assert.equal(shouldPrewarm(spec, { ...spec }), false);
  });
  it("an unknown or missing connection never prewarms (preview of a host still being created)", () => {
    assert.equal(shouldPrewarm({}, { ...spec, connection: { ...connection, host: UNKNOWN } }), false);
    assert.equal(shouldPrewarm({}, { ...spec, connection: UNKNOWN }), false);
  });
});

describe("record-only changes (a rebuilt server's new host key, a rotated client key)", () => {
  const connection = { host: "127.0.0.11", port: 22, user: "root", privateKey: "k", hostKey: "SHA256:old" };
  const spec = { name: "api", releaseId: "abc123def", connection };

  it("a new hostKey or privateKey is an update that only records it, and opens no connection early", () => {
    for (const change of [{ hostKey: "SHA256:new" }, { privateKey: "k2" }, { user: "deploy" }]) {
      const news = { ...spec, connection: { ...connection, ...change } };
      const d = diffService(spec, news);
      assert.equal(d.changes, true, JSON.stringify(change));
      assert.equal(d.recordOnly, true, JSON.stringify(change));
      assert.equal(shouldPrewarm(spec, news), false);
    }
  });
  it("with a new release as well, it is a deploy", () => {
    const d = diffService(spec, {
      ...spec,
      releaseId: "fff999aaa",
      connection: { ...connection, hostKey: "SHA256:n" },
    });
    assert.equal(d.recordOnly, false);
    assert.equal(d.changes, true);
  });
});
