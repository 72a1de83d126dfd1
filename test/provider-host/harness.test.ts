/**
 * The harness's own tests, through the real dynamic provider host process.
 *
 * Test providers append one JSON line per call to `ops.jsonl` in a temp dir, including
 * `process.pid`: a line with the host's pid proves the code ran in the host, not in mocha.
 */
import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Client } from "ssh2";
import {
  CheckFailedError,
  ProviderError,
  ProviderHost,
  ProviderHostError,
  SimulatedResource,
  UNKNOWN,
  isSecretMarker,
  secret,
  serializeProvider,
  withProvider,
} from "../support/provider-host";

interface Op {
  op: string;
  pid: number;
  [key: string]: unknown;
}

function readOps(dir: string): Op[] {
  const file = path.join(dir, "ops.jsonl");
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Op);
}

/**
 * A small provider over a temp dir. Inputs: name (replace on change), size (update on change),
 * optional password, dbr (ask for delete-before-replace), failUpdate.
 */
function recordingProvider(dir: string): pulumi.dynamic.ResourceProvider {
  // Everything used inside the methods is captured by value at serialization time.
  const record = (op: string, data: Record<string, unknown>): void => {
    const line = JSON.stringify({ op, pid: process.pid, ...data });
    fs.appendFileSync(path.join(dir, "ops.jsonl"), line + "\n");
  };
  const withoutProvider = (props: Record<string, unknown>): Record<string, unknown> => {
    const copy = { ...props };
    delete copy.__provider;
    return copy;
  };
  return {
    async check(olds, news) {
      record("check", {
        olds: withoutProvider(olds),
        news: withoutProvider(news),
      });
      const size = news.size;
      // Unknown values must pass validation during preview.
      if (typeof size === "number" && size < 0) {
        return {
          inputs: news,
          failures: [{ property: "size", reason: "must be >= 0" }],
        };
      }
      return { inputs: news };
    },
    async diff(id, olds, news) {
      record("diff", {
        id,
        olds: withoutProvider(olds),
        news: withoutProvider(news),
      });
      const replaces = olds.name !== news.name ? ["name"] : [];
      const changes = replaces.length > 0 || olds.size !== news.size || olds.password !== news.password;
      return { changes, replaces, deleteBeforeReplace: news.dbr === true };
    },
    async create(inputs) {
      // A local named arrow: under tsx (esbuild keepNames) it becomes `__name(...)`, which the
      // serialized provider must carry into the host.
      const shout = (s: string): string => s.toUpperCase();
      record("create", { inputs: withoutProvider(inputs) });
      const id = `${inputs.name}-${crypto.randomBytes(3).toString("hex")}`;
      const outs: Record<string, unknown> = {
        name: inputs.name,
        size: inputs.size,
        label: shout(inputs.name),
      };
      if (inputs.password !== undefined) {
        outs.password = inputs.password;
        // Derived from a secret under another name: the engine stores this in plain text.
        outs.connection = `${inputs.name}:${inputs.password}`;
      }
      console.log(`created ${id} in pid ${process.pid}`);
      return { id, outs };
    },
    async read(id, props) {
      record("read", { id });
      if (fs.existsSync(path.join(dir, `gone-${id}`))) return { id: "", props: {} };
      return { id, props: { ...props, refreshedBy: process.pid } };
    },
    async update(id, olds, news) {
      record("update", {
        id,
        olds: withoutProvider(olds),
        news: withoutProvider(news),
      });
      if (news.failUpdate) throw new Error("update exploded");
      return { outs: { ...olds, name: news.name, size: news.size } };
    },
    async delete(id) {
      record("delete", { id });
    },
  };
}

describe("provider host harness (real host process)", function () {
  this.timeout(30_000);
  let host: ProviderHost;
  let dir: string;

  before(async () => {
    host = await ProviderHost.start();
  });
  after(async () => {
    await host?.stop();
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-harness-"));
    host.clearLogs();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("starts the host in its own process and configures it like the engine", () => {
    assert.ok(host.pid > 0 && host.pid !== process.pid);
    assert.ok(host.port > 0);
    assert.strictEqual(host.calls[0], "configure");
    // The Node dynamic provider host refuses secrets: the engine must strip them.
    assert.strictEqual(host.acceptsSecrets, false);
  });

  it("runs create, read, update and delete inside the host process", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "web",
    });
    assert.strictEqual((await r.up({ name: "web", size: 1 })).op, "create");
    assert.strictEqual((await r.up({ name: "web", size: 2 })).op, "update");
    await r.refresh();
    await r.destroy();

    const ops = readOps(dir);
    assert.deepStrictEqual(
      ops.map((o) => o.op),
      ["check", "create", "check", "diff", "update", "read", "delete"],
    );
    for (const o of ops) assert.strictEqual(o.pid, host.pid, `${o.op} ran in pid ${o.pid}`);
    assert.notStrictEqual(host.pid, process.pid);
    assert.strictEqual(r.state, undefined);
  });

  it("carries tsx's __name helpers into the host (serialized code still runs)", async () => {
    const provider = recordingProvider(dir);
    // Proves this test exercises esbuild's keepNames output, not just plain functions.
    assert.match(await serializeProvider(provider), /__name\(/);
    const r = new SimulatedResource(host, provider, { name: "n" });
    const { state } = await r.up({ name: "web", size: 1 });
    assert.strictEqual(state?.plainOutputs.label, "WEB");
  });

  it("decides update vs replace from diff; a replacement creates before it deletes", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "srv",
    });
    await r.up({ name: "a", size: 1 });
    const firstId = r.state?.id;
    assert.strictEqual((await r.up({ name: "a", size: 2 })).op, "update");
    assert.strictEqual(r.state?.id, firstId);

    const before = readOps(dir).length;
    assert.strictEqual((await r.up({ name: "b", size: 2 })).op, "replace");
    const ops = readOps(dir).slice(before);
    assert.deepStrictEqual(
      ops.map((o) => o.op),
      ["check", "diff", "check", "create", "delete"],
    );
    // The engine re-checks a replacement without olds, and deletes the old id last.
    assert.deepStrictEqual(ops[2]?.olds, {});
    assert.strictEqual(ops[4]?.id, firstId);
    assert.notStrictEqual(r.state?.id, firstId);
  });

  it("deletes first when diff asks for deleteBeforeReplace", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "srv",
    });
    await r.up({ name: "a", size: 1, dbr: true });
    const before = readOps(dir).length;
    assert.strictEqual((await r.up({ name: "b", size: 1, dbr: true })).op, "replace");
    const kinds = readOps(dir)
      .slice(before)
      .map((o) => o.op)
      .filter((k) => k === "create" || k === "delete");
    assert.deepStrictEqual(kinds, ["delete", "create"]);
  });

  it("preview runs check and diff only, never create or update", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "p",
    });
    assert.strictEqual((await r.preview({ name: "a", size: 1 })).op, "create");
    assert.strictEqual(r.state, undefined);
    assert.deepStrictEqual(
      readOps(dir).map((o) => o.op),
      ["check"],
    );

    await r.up({ name: "a", size: 1 });
    const stateBefore = r.state;
    const opsBefore = readOps(dir).length;
    const callsBefore = host.calls.length;
    assert.strictEqual((await r.preview({ name: "a", size: 2 })).op, "update");
    assert.strictEqual((await r.preview({ name: "b", size: 1 })).op, "replace");
    assert.strictEqual((await r.preview({ name: "a", size: 1 })).op, "same");

    const ran = readOps(dir)
      .slice(opsBefore)
      .map((o) => o.op);
    assert.ok(ran.length > 0);
    assert.deepStrictEqual(
      ran.filter((k) => k !== "check" && k !== "diff"),
      [],
    );
    assert.ok(host.calls.slice(callsBefore).every((c) => c === "check" || c === "diff"));
    assert.deepStrictEqual(r.state, stateBefore);
  });

  it("delivers the unknown sentinel to check and diff during preview", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "u",
    });
    await r.up({ name: "a", size: 1 });
    const before = readOps(dir).length;
    const result = await r.preview({ name: "a", size: UNKNOWN });
    assert.strictEqual(result.op, "update");
    const [check, diff] = readOps(dir).slice(before);
    assert.strictEqual((check?.news as Record<string, unknown>).size, UNKNOWN);
    assert.strictEqual(diff?.op, "diff");
    assert.strictEqual((diff?.news as Record<string, unknown>).size, UNKNOWN);
    await assert.rejects(r.up({ name: "a", size: UNKNOWN }), /unknowns only exist during preview/);
  });

  it("strips secrets before the host sees them and re-marks outputs by name only", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "s",
    });
    const { state } = await r.up({
      name: "db",
      size: 1,
      password: secret("hunter2"),
    });
    const create = readOps(dir).find((o) => o.op === "create");
    // The provider got the plain string, no secret wrapper.
    assert.strictEqual((create?.inputs as Record<string, unknown>).password, "hunter2");

    assert.ok(state);
    assert.ok(isSecretMarker(state.outputs.password));
    assert.deepStrictEqual(state.secretOutputKeys, ["password"]);
    assert.deepStrictEqual(state.secretInputKeys, ["password"]);
    // `connection` embeds the password under another name: stored in plain text.
    assert.strictEqual(state.outputs.connection, "db:hunter2");
    assert.ok(r.plainStateJson().includes("hunter2"));

    // additionalSecretOutputs is the fix; the plain state then holds no trace of the value.
    const fixed = new SimulatedResource(host, recordingProvider(dir), {
      name: "s2",
      additionalSecretOutputs: ["connection"],
    });
    await fixed.up({ name: "db", size: 1, password: secret("hunter2") });
    assert.deepStrictEqual(fixed.state?.secretOutputKeys.sort(), ["connection", "password"]);
    assert.ok(!fixed.plainStateJson().includes("hunter2"));
  });

  it("keeps the previous state when an update fails", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "f",
    });
    await r.up({ name: "a", size: 1 });
    const before = r.state;
    const err = await r.up({ name: "a", size: 2, failUpdate: true }).catch((e: unknown) => e);
    assert.ok(err instanceof ProviderError);
    assert.strictEqual(err.message, "update exploded");
    assert.strictEqual(err.method, "update");
    assert.deepStrictEqual(r.state, before);
    assert.strictEqual(r.state?.plainOutputs.size, 1);
  });

  it("reports check failures and provider errors with the provider's message", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "c",
    });
    const err = await r.up({ name: "a", size: -1 }).catch((e: unknown) => e);
    assert.ok(err instanceof CheckFailedError);
    assert.deepStrictEqual(err.failures, [{ property: "size", reason: "must be >= 0" }]);
    assert.ok(!readOps(dir).some((o) => o.op === "create"));

    const failingDiff: pulumi.dynamic.ResourceProvider = {
      async create() {
        return { id: "x", outs: {} };
      },
      async diff() {
        throw new Error("diff exploded");
      },
    };
    const d = new SimulatedResource(host, failingDiff, { name: "d" });
    await d.up({ v: 1 });
    const derr = await d.up({ v: 2 }).catch((e: unknown) => e);
    assert.ok(derr instanceof ProviderError);
    assert.strictEqual(derr.message, "diff exploded");
    assert.strictEqual(derr.method, "diff");
  });

  it("decodes DIFF_SOME / DIFF_NONE / DIFF_UNKNOWN from the raw Diff RPC", async () => {
    const provider: pulumi.dynamic.ResourceProvider = {
      async create() {
        return { id: "x", outs: {} };
      },
      async diff(_id, _olds, news) {
        const changes = news.mode === "some" ? true : news.mode === "none" ? false : undefined;
        return {
          changes,
          replaces: news.mode === "some" ? ["mode"] : [],
          deleteBeforeReplace: news.mode === "some",
        };
      },
    };
    const diffFor = async (mode: string) => host.diff("x", {}, await withProvider(provider, { mode }), {});
    assert.deepStrictEqual(await diffFor("some"), {
      changes: true,
      replaces: ["mode"],
      deleteBeforeReplace: true,
    });
    assert.deepStrictEqual(await diffFor("none"), {
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
    assert.deepStrictEqual(await diffFor("unknown"), {
      changes: undefined,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("refresh reads with the stored state; an empty id drops the resource", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "r",
    });
    await r.up({ name: "a", size: 1 });
    const refreshed = await r.refresh();
    assert.strictEqual(refreshed?.plainOutputs.refreshedBy, host.pid);
    fs.writeFileSync(path.join(dir, `gone-${r.state?.id}`), "");
    assert.strictEqual(await r.refresh(), undefined);
    assert.strictEqual(r.state, undefined);
  });

  it("captures the provider's console output in host.logs()", async () => {
    const r = new SimulatedResource(host, recordingProvider(dir), {
      name: "l",
    });
    await r.up({ name: "a", size: 1 });
    const line = `created ${r.state?.id} in pid ${host.pid}`;
    assert.ok((await host.waitForLog(line)).includes(line), host.logs());
  });

  it("fails at serialization, before any RPC, for a provider capturing a hash or an ssh2 Client", async () => {
    const hash = crypto.createHash("sha256");
    const hashing: pulumi.dynamic.ResourceProvider = {
      async create() {
        return { id: hash.update("x").digest("hex"), outs: {} };
      },
    };
    await assert.rejects(serializeProvider(hashing), /Error serializing[\s\S]*variable 'hash'/);

    const client = new Client();
    const ssh: pulumi.dynamic.ResourceProvider = {
      async create() {
        client.end();
        return { id: "x", outs: {} };
      },
    };
    await assert.rejects(serializeProvider(ssh), /Error serializing[\s\S]*variable 'client'/);

    const calls = host.calls.length;
    await assert.rejects(new SimulatedResource(host, hashing, { name: "h" }).up({}), /Error serializing/);
    assert.strictEqual(host.calls.length, calls, "no RPC should have been sent");
  });

  it("serializes a captured Map, which then breaks inside the host", async () => {
    const sizes = new Map([["small", 1]]);
    assert.strictEqual(sizes.get("small"), 1); // fine in mocha's process
    const provider: pulumi.dynamic.ResourceProvider = {
      async create() {
        return { id: "x", outs: { size: sizes.get("small") ?? null } };
      },
    };
    // No serialization error: the Map is rebuilt as a plain object borrowing Map.prototype's
    // methods, without its entries (it is never `new Map(...)` in the host).
    const text = await serializeProvider(provider);
    assert.match(text, /var __sizes = \{\};[\s\S]*global\.Map\.prototype\.get/);
    assert.doesNotMatch(text, /new Map/);
    const err = await new SimulatedResource(host, provider, { name: "m" }).up({}).catch((e: unknown) => e);
    assert.ok(err instanceof ProviderError);
    assert.match(err.message, /Map\.prototype\.get called on incompatible receiver/);
  });

  it("fails AFTER the side effect when create returns undefined in its outputs", async () => {
    const marker = path.join(dir, "created-remotely");
    const provider: pulumi.dynamic.ResourceProvider = {
      async create() {
        fs.writeFileSync(marker, String(process.pid));
        return { id: "x", outs: { note: undefined } };
      },
    };
    const r = new SimulatedResource(host, provider, { name: "undef" });
    await assert.rejects(
      r.up({}),
      (e: unknown) => e instanceof ProviderError && /Unexpected struct type/.test(e.message),
    );
    // The work was done in the host, but nothing was recorded.
    assert.strictEqual(fs.readFileSync(marker, "utf8"), String(host.pid));
    assert.strictEqual(r.state, undefined);
  });

  it("records a thrown error carrying .id as partially created; without __provider in its properties, destroy cannot load the provider", async () => {
    const failing = (keepInputs: boolean): pulumi.dynamic.ResourceProvider => ({
      async create(inputs) {
        const base = keepInputs ? { ...inputs } : {};
        throw Object.assign(new Error("booted but unhealthy"), {
          id: "srv-1",
          properties: { ...base, stage: "boot" },
        });
      },
      async delete(id) {
        fs.writeFileSync(path.join(dir, `deleted-${id}`), String(process.pid));
      },
    });

    const bare = new SimulatedResource(host, failing(false), { name: "bare" });
    const err = await bare.up({ name: "a" }).catch((e: unknown) => e);
    assert.ok(err instanceof ProviderError);
    assert.strictEqual(err.message, "booted but unhealthy");
    assert.deepStrictEqual(err.partial, {
      id: "srv-1",
      properties: { stage: "boot" },
      reasons: [],
    });
    // The engine reports an InitError built from `reasons`: the message above never reaches the user.
    assert.strictEqual(err.engineMessage, "resource init failed");
    assert.strictEqual(bare.state?.id, "srv-1");
    assert.ok(!("__provider" in (bare.state?.outputs ?? {})));
    // Delete only looks at the stored outputs for `__provider`.
    await assert.rejects(bare.destroy(), /code must be a string/);
    assert.ok(!fs.existsSync(path.join(dir, "deleted-srv-1")));

    // Echoing the inputs (which carry __provider) into the error's properties keeps it destroyable.
    const echoing = new SimulatedResource(host, failing(true), {
      name: "echo",
    });
    await assert.rejects(echoing.up({ name: "a" }), /booted but unhealthy/);
    await echoing.destroy();
    assert.strictEqual(fs.readFileSync(path.join(dir, "deleted-srv-1"), "utf8"), String(host.pid));
  });

  it("reports a host that dies mid-call clearly, with its last output", async () => {
    const own = await ProviderHost.start();
    try {
      const dying: pulumi.dynamic.ResourceProvider = {
        async create() {
          console.log("about to die");
          process.exit(7);
        },
      };
      const err = await new SimulatedResource(own, dying, { name: "x" }).up({}).catch((e: unknown) => e);
      assert.ok(err instanceof ProviderHostError);
      assert.match(err.message, /exited \(code 7, signal null\) during create/);
      assert.match(err.message, /about to die/);
      assert.deepStrictEqual(own.exited, { code: 7, signal: null });
      await assert.rejects(own.check("urn:x", {}, {}), /provider host is not running/);
    } finally {
      await own.stop();
    }
  });
});
