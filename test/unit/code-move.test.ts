import { strict as assert } from "assert";
import type * as pulumi from "@pulumi/pulumi";
import { needsCodeMove, withCodeMove } from "../../providers/code-move";
import { loaderModuleText } from "../../providers/ship";

type Props = Record<string, unknown>;

/** A provider that records its calls and answers what it was told to. */
function fakeProvider(answers: { diff?: pulumi.dynamic.DiffResult; update?: boolean } = {}) {
  const calls: { method: string; args: unknown[] }[] = [];
  const provider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Props, news: Props) {
      calls.push({ method: "check", args: [olds, news] });
      return { inputs: news };
    },
    async create(inputs: Props) {
      calls.push({ method: "create", args: [inputs] });
      return { id: "made", outs: { created: true } };
    },
    async diff(id: string, olds: Props, news: Props) {
      calls.push({ method: "diff", args: [id, olds, news] });
      return answers.diff ?? { changes: false };
    },
    async delete(id: string, props: Props) {
      calls.push({ method: "delete", args: [id, props] });
    },
  };
  if (answers.update !== false) {
    provider.update = async (id: string, olds: Props, news: Props) => {
      calls.push({ method: "update", args: [id, olds, news] });
      return { outs: { updated: true } };
    };
  }
  return { provider, calls, methods: () => calls.map((c) => c.method) };
}

/** The whole provider code, as fleet stored it in `__provider` before docs/state.md's loader. */
const LEGACY =
  "function fleetLoader(packed) { /* the whole provider, ~100 KB */ }\nexports.handler = () => fleetLoader('…');";
const CURRENT = loaderModuleText("service");

const olds = (provider: string): Props => ({ name: "web", port: 8080, secret: { x: 1 }, __provider: provider });
const news: Props = { name: "web", port: 8080, secret: { x: 1 }, __provider: CURRENT };

describe("needsCodeMove (providers/code-move.ts)", () => {
  it("older state: a __provider that is not the current loader", () => {
    assert.equal(needsCodeMove(olds(LEGACY)), true);
    assert.equal(needsCodeMove({ __provider: "exports.handler = __f0;" }), true, "a closure from Pulumi's serializer");
  });

  it("not a move: the current loader of any bundle, or no __provider at all", () => {
    assert.equal(needsCodeMove(olds(CURRENT)), false);
    assert.equal(needsCodeMove(olds(loaderModuleText("hostKey"))), false);
    assert.equal(needsCodeMove({ name: "web" }), false);
    assert.equal(needsCodeMove({}), false);
  });
});

describe("withCodeMove (providers/code-move.ts)", () => {
  it("older state the provider sees no change in: diff says changes, update records the outputs and runs nothing", async () => {
    const inner = fakeProvider({ diff: { changes: false } });
    const moved = withCodeMove(inner.provider);
    assert.deepEqual(await moved.diff!("id-1", olds(LEGACY), news), { changes: true });
    assert.deepEqual(inner.methods(), ["diff"], "the provider's own diff was asked");
    assert.deepEqual(inner.calls[0]!.args, ["id-1", olds(LEGACY), news]);

    const result = await moved.update!("id-1", olds(LEGACY), news);
    assert.deepEqual(result, { outs: { name: "web", port: 8080, secret: { x: 1 } } }, "olds without __provider");
    assert.ok(!("__provider" in (result.outs as Props)));
    assert.ok(!inner.methods().includes("update"), "the provider's update never ran");
  });

  it("keeps what else the provider's diff said (e.g. deleteBeforeReplace, stables)", async () => {
    const inner = fakeProvider({ diff: { changes: false, stables: ["name"] } });
    const moved = withCodeMove(inner.provider);
    assert.deepEqual(await moved.diff!("id", olds(LEGACY), news), { changes: true, stables: ["name"] });
  });

  it("an unknown diff (changes undefined) of older state is a move too", async () => {
    const inner = fakeProvider({ diff: {} });
    const moved = withCodeMove(inner.provider);
    assert.equal((await moved.diff!("id", olds(LEGACY), news)).changes, true);
    assert.deepEqual(await moved.update!("id", olds(LEGACY), news), {
      outs: { name: "web", port: 8080, secret: { x: 1 } },
    });
    assert.ok(!inner.methods().includes("update"));
  });

  it("current state: diff passes through unchanged and update calls the provider's", async () => {
    const inner = fakeProvider({ diff: { changes: false } });
    const moved = withCodeMove(inner.provider);
    assert.deepEqual(await moved.diff!("id", olds(CURRENT), news), { changes: false });
    assert.deepEqual(await moved.update!("id", olds(CURRENT), news), { outs: { updated: true } });
    assert.deepEqual(inner.calls.at(-1), { method: "update", args: ["id", olds(CURRENT), news] });
  });

  it("state without __provider at all is not a move", async () => {
    const inner = fakeProvider({ diff: { changes: false } });
    const moved = withCodeMove(inner.provider);
    const plain = { name: "web" };
    assert.deepEqual(await moved.diff!("id", plain, news), { changes: false });
    assert.deepEqual(await moved.update!("id", plain, news), { outs: { updated: true } });
    assert.ok(inner.methods().includes("update"));
  });

  for (const answer of [
    { changes: true },
    { changes: true, replaces: ["port"] },
    { changes: true, replaces: ["port"], deleteBeforeReplace: true },
  ] as pulumi.dynamic.DiffResult[]) {
    it(`a change the provider sees (${JSON.stringify(answer)}) passes through, even from older state`, async () => {
      for (const provider of [LEGACY, CURRENT]) {
        const inner = fakeProvider({ diff: answer });
        const moved = withCodeMove(inner.provider);
        assert.deepEqual(await moved.diff!("id", olds(provider), news), answer);
        assert.deepEqual(await moved.update!("id", olds(provider), news), { outs: { updated: true } });
        assert.deepEqual(inner.calls.at(-1), { method: "update", args: ["id", olds(provider), news] });
      }
    });
  }

  it("a provider without update: a move still records the outputs, anything else gives {}", async () => {
    const inner = fakeProvider({ diff: { changes: false }, update: false });
    const moved = withCodeMove(inner.provider);
    assert.equal(typeof moved.update, "function", "added, so a move is not an update that stores nothing");
    assert.deepEqual(await moved.update!("id", olds(LEGACY), news), {
      outs: { name: "web", port: 8080, secret: { x: 1 } },
    });
    assert.deepEqual(await moved.update!("id", olds(CURRENT), news), {});
    const changing = withCodeMove(fakeProvider({ diff: { changes: true }, update: false }).provider);
    assert.deepEqual(await changing.update!("id", olds(LEGACY), news), {});
  });

  it("a provider without diff is left as it is (no diff, no update added)", () => {
    const bare: pulumi.dynamic.ResourceProvider = { create: async () => ({ id: "x" }) };
    const moved = withCodeMove(bare);
    assert.deepEqual(Object.keys(moved).sort(), ["create"]);
  });

  it("keeps the provider's other methods", async () => {
    const inner = fakeProvider();
    const own = { diff: inner.provider.diff, update: inner.provider.update };
    const moved = withCodeMove(inner.provider);
    assert.deepEqual(Object.keys(moved).sort(), ["check", "create", "delete", "diff", "update"]);
    assert.deepEqual(await moved.create!({ a: 1 }), { id: "made", outs: { created: true } });
    await moved.delete!("made", olds(LEGACY));
    assert.deepEqual(inner.methods(), ["create", "delete"], "create and delete are the provider's own");
    assert.notEqual(moved, inner.provider);
    assert.equal(inner.provider.diff, own.diff, "the provider object itself is not changed");
    assert.equal(inner.provider.update, own.update);
  });
});
