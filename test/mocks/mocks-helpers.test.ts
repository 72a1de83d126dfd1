/**
 * Tests for test/support/mocks.ts with a tiny component and a dynamic resource defined here.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  allCalls,
  allRegistrations,
  findByType,
  findResource,
  installMocks,
  isKnown,
  isSecret,
  promiseOf,
  reset,
  settle,
} from "../support/mocks";

const DYNAMIC = "pulumi-nodejs:dynamic:Resource";
// If provider code ran anywhere (this process or another), it would leave this file behind.
const markerDir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-mocks-"));
const marker = path.join(markerDir, "create-ran");

const boxProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs) {
    fs.writeFileSync(marker, String(process.pid));
    return { id: "real-id", outs: inputs };
  },
};

interface BoxArgs {
  size: pulumi.Input<number>;
  password?: pulumi.Input<string>;
}

class Box extends pulumi.dynamic.Resource {
  // `declare`: no class-field initializer may overwrite the Outputs the base class created.
  declare readonly size: pulumi.Output<number>;
  declare readonly ip: pulumi.Output<string>;
  declare readonly password: pulumi.Output<string | undefined>;

  constructor(name: string, args: BoxArgs, opts?: pulumi.CustomResourceOptions) {
    super(boxProvider, name, { ip: undefined, password: undefined, ...args }, opts);
  }
}

class Rack extends pulumi.ComponentResource {
  readonly box: Box;

  constructor(
    name: string,
    args: { size: number; password?: pulumi.Input<string> },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("fleet:test:Rack", name, {}, opts);
    this.box = new Box(`${name}-box`, args, { parent: this });
    this.registerOutputs({ boxId: this.box.id });
  }
}

describe("mocks helpers", () => {
  after(() => fs.rmSync(markerDir, { recursive: true, force: true }));

  describe("recording (up)", () => {
    beforeEach(async () => {
      await installMocks({
        newResource: (args) =>
          args.type === DYNAMIC ? { id: `box-${args.name}`, state: { ip: "10.0.0.5" } } : undefined,
        call: (args) => (args.token === "fleet:test:lookup" ? { answer: Number(args.inputs.q) * 2 } : undefined),
      });
    });

    it("records the component and its dynamic child with their kind, inputs and answers", async () => {
      const rack = new Rack("r1", { size: 2 });
      assert.strictEqual(await promiseOf(rack.box.id), "box-r1-box");
      await settle();

      const comp = findResource("fleet:test:Rack", "r1");
      assert.strictEqual(comp.kind, "component");
      assert.strictEqual(comp.custom, false);
      assert.strictEqual(comp.id, undefined);

      const box = findResource(DYNAMIC, "r1-box");
      assert.strictEqual(box.kind, "custom");
      assert.strictEqual(box.inputs.size, 2);
      // Serialization still happens under mocks: the provider text travels as an input.
      assert.match(String(box.inputs.__provider), /exports\.handler/);
      assert.deepStrictEqual(box.state.ip, "10.0.0.5");
      assert.deepStrictEqual(
        allRegistrations().map((r) => r.name),
        ["r1", "r1-box"],
      );
      // Project and stack names are fleet/test, and the child is parented to the component.
      assert.strictEqual(await promiseOf(rack.box.urn), `urn:pulumi:test::fleet::fleet:test:Rack$${DYNAMIC}::r1-box`);
    });

    it("serves per-type state through the Outputs and never runs provider code", async () => {
      const box = new Box("b", { size: 3 });
      assert.strictEqual(await promiseOf(box.ip), "10.0.0.5");
      assert.strictEqual(await promiseOf(box.size), 3);
      await settle();
      assert.ok(!fs.existsSync(marker), "a provider method ran under mocks");
    });

    it("keeps secrets secret: marked in recorded inputs and in the Output", async () => {
      const box = new Box("s", { size: 1, password: pulumi.secret("hunter2") });
      assert.strictEqual(await isSecret(box.password), true);
      assert.strictEqual(await isSecret(box.size), false);
      assert.strictEqual(await promiseOf(box.password), "hunter2");
      await settle();
      const recorded = findResource(DYNAMIC, "s").inputs.password;
      assert.ok(pulumi.runtime.isRpcSecret(recorded), `expected a secret marker, got ${JSON.stringify(recorded)}`);
      assert.strictEqual(pulumi.runtime.unwrapRpcSecret(recorded), "hunter2");
    });

    it("records invokes with their answers", async () => {
      const result = await pulumi.runtime.invoke("fleet:test:lookup", {
        q: 21,
      });
      assert.strictEqual(result.answer, 42);
      await pulumi.runtime.invoke("fleet:test:other", {});
      assert.deepStrictEqual(
        allCalls().map((c) => [c.token, c.result]),
        [
          ["fleet:test:lookup", { answer: 42 }],
          ["fleet:test:other", {}],
        ],
      );
    });

    it("finds by type, explains a missing or ambiguous name, and resets", async () => {
      new Box("one", { size: 1 });
      new Box("two", { size: 2 });
      new Box("two", { size: 3 }, { parent: new Rack("holder", { size: 0 }) });
      await settle();
      assert.deepStrictEqual(
        findByType(DYNAMIC)
          .map((r) => r.name)
          .sort(),
        ["holder-box", "one", "two", "two"],
      );
      assert.throws(
        () => findResource(DYNAMIC, "three"),
        /no registration\(s\)[\s\S]*pulumi-nodejs:dynamic:Resource one/,
      );
      assert.throws(() => findResource(DYNAMIC, "two"), /2 registration\(s\)/);
      reset();
      assert.deepStrictEqual(allRegistrations(), []);
    });
  });

  describe("preview", () => {
    before(async () => {
      await installMocks({ preview: true });
    });

    it("runs as a preview: ids are unknown unless the mock gives one", async () => {
      assert.strictEqual(pulumi.runtime.isDryRun(), true);
      const box = new Box("p", { size: 1 });
      assert.strictEqual(await isKnown(box.id), false);
      assert.strictEqual(await promiseOf(box.id), undefined);
      assert.strictEqual(await isKnown(box.size), true);
      await settle();
      assert.strictEqual(findResource(DYNAMIC, "p").id, undefined);
    });
  });
});
