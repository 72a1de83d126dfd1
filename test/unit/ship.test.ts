import { strict as assert } from "assert";
import * as pulumi from "@pulumi/pulumi";
import {
  bundleProviderSource,
  loaderFor,
  packBundle,
  PROVIDER_SOURCES,
  shippedProvider,
  shippedProviderText,
  shippedProviderTextOf,
  unpackShipped,
} from "../../providers/ship";
import { serviceProvider } from "../../providers/service/provider";

/** providers/ship.ts: what a dynamic resource stores as `__provider`. */
describe("shipped providers", function () {
  this.timeout(60_000);

  it("bundling is deterministic, so an unchanged fleet does not change __provider", () => {
    const a = bundleProviderSource(PROVIDER_SOURCES.service.file);
    const b = bundleProviderSource(PROVIDER_SOURCES.service.file);
    assert.equal(a, b);
    assert.equal(packBundle(a), packBundle(b));
  });

  it("the bundle leaves npm packages as requires and inlines fleet's own modules", () => {
    const code = bundleProviderSource(PROVIDER_SOURCES.service.file);
    assert.match(code, /require\("ssh2"\)/);
    assert.doesNotMatch(code, /require\("\.\.?\//, "no relative require survives: the host has no fleet sources");
  });

  it("the Service provider's __provider text is small, and carries what the closure serializer cannot (zod)", async () => {
    const shipped = { text: shippedProviderText("service") };
    // The closure was ~215 KB before the provider's check used the model's zod schema; now the
    // SDK cannot serialize it at all. The bundle requires zod at run time, like ssh2. (40 KB until
    // the host-side watchdog, commands/watchdog.ts, joined it; 44 KB until the proxy mode did; 48 KB
    // until shared files and hooks did; 52 KB until the root-owned release marks, issue 29.)
    assert.ok(shipped.text.length < 56_000, `shipped ${shipped.text.length} B`);
    assert.match(bundleProviderSource(PROVIDER_SOURCES.service.file), /require\("zod"\)/);
    await assert.rejects(
      pulumi.runtime.serializeFunction(() => serviceProvider, { allowSecrets: true }),
      /zod/,
    );
  });

  it("the loader exposes exactly the provider's methods and runs the bundled code", async () => {
    const code = 'exports.p = { check: async (o, n) => ({ inputs: { ...n, seen: require("path").sep } }) };';
    const loader = loaderFor(packBundle(code), "p", ["check"]) as Required<pulumi.dynamic.ResourceProvider>;
    assert.deepEqual(Object.keys(loader), ["check"]);
    assert.deepEqual(await loader.check({}, { a: 1 }), { inputs: { a: 1, seen: "/" } });
  });

  it("a bundle without the export fails with a message naming it", () => {
    const loader = loaderFor(packBundle("exports.other = {};"), "missing", ["diff"]);
    assert.throws(() => loader.diff!("id", {}, {}), /has no export missing/);
  });

  it("every shipped provider keeps the methods its module defines", () => {
    for (const name of Object.keys(PROVIDER_SOURCES) as (keyof typeof PROVIDER_SOURCES)[]) {
      const source = PROVIDER_SOURCES[name];

      const inProcess = require(`../../${source.file}`)[source.exportName] as Record<string, unknown>;
      const expected = Object.keys(inProcess)
        .filter((k) => typeof inProcess[k] === "function")
        .sort();
      assert.deepEqual(Object.keys(shippedProvider(name)).sort(), expected, name);
    }
  });
});

describe("unpackShipped", () => {
  it("gives back the bundled code from a __provider text, and nothing from other text", () => {
    assert.equal(unpackShipped(shippedProviderText("hostKey")), bundleProviderSource(PROVIDER_SOURCES.hostKey.file));
    assert.equal(unpackShipped("exports.handler = () => ({});"), undefined);
  });
});

describe("the __provider text", () => {
  it("is what Pulumi's dynamic-provider host loads: a module whose handler() gives the provider", async () => {
    const text = shippedProviderText("hostKey");
    // As @pulumi/pulumi/cmd/dynamic-provider does it.
    const requireFromString = require("require-from-string") as (code: string) => { handler(): any };
    const provider = requireFromString(text).handler();
    assert.deepEqual(Object.keys(provider).sort(), ["create", "diff"]);
    assert.deepEqual(await provider.diff("id", {}, {}), { changes: false });
  });

  it("is the same text on every call, and the provider object keeps it", () => {
    assert.equal(shippedProviderText("service"), shippedProviderText("service"));
    assert.equal(shippedProviderTextOf(shippedProvider("service")), shippedProviderText("service"));
    assert.equal(shippedProviderTextOf({}), undefined);
  });
});
