import { strict as assert } from "assert";
import * as pulumi from "@pulumi/pulumi";
import { Config as HostConfig } from "@pulumi/pulumi/cmd/dynamic-provider/config";
import {
  CODE_LOADER_KEY,
  CODE_LOADER_MARK,
  CODE_METHODS,
  CODE_PROVIDER_PREFIX,
  isCodeLoaderText,
} from "../../model/shipped-code";
import type * as ship from "../../providers/ship";
import {
  bundleProviderSource,
  bundleSha256,
  codeProviderConfig,
  codeProviderName,
  loaderBodyText,
  loaderFor,
  loaderModuleText,
  packBundle,
  PROVIDER_SOURCES,
  shippedProvider,
  shippedProviderText,
  shippedProviderTextOf,
  unpackShipped,
  type ShippedProviderName,
} from "../../providers/ship";
import { serviceProvider } from "../../providers/service/provider";

const NAMES = Object.keys(PROVIDER_SOURCES) as ShippedProviderName[];

/** What Pulumi's dynamic-provider host does with a `__provider` text (@pulumi/pulumi/cmd/dynamic-provider). */
async function hostLoad(text: string, rawConfig: Record<string, string>): Promise<Record<string, any>> {
  const requireFromString = require("require-from-string") as (code: string) => { handler(): any };
  const provider = requireFromString(text).handler();
  await provider.configure({ config: new HostConfig(rawConfig, "fleet") });
  return provider;
}

/** providers/ship.ts: how a provider's code is bundled and packed. */
describe("shipped providers: the bundles", function () {
  this.timeout(60_000);

  it("bundling is deterministic, so an unchanged fleet keeps its code provider", () => {
    const a = bundleProviderSource("service");
    const b = bundleProviderSource("service");
    assert.equal(a, b);
    assert.equal(packBundle(a), packBundle(b));
    assert.equal(bundleSha256(packBundle(a)), bundleSha256(packBundle(b)));
  });

  it("a bundle leaves npm packages as requires and inlines fleet's own modules", () => {
    for (const name of ["service", "hostKey"] as const) {
      const code = bundleProviderSource(name);
      assert.doesNotMatch(
        code,
        /require\("\.\.?\//,
        `${name}: no relative require survives: the host has no fleet sources`,
      );
      assert.match(code, /exports|module\.exports/, name);
    }
    assert.match(bundleProviderSource("service"), /require\("ssh2"\)/);
  });

  it("a bundle carries what the closure serializer cannot (zod)", async () => {
    // The bundle requires zod at run time, like ssh2; Pulumi's serializer cannot capture it at all.
    assert.match(bundleProviderSource("service"), /require\("zod"\)/);
    await assert.rejects(
      pulumi.runtime.serializeFunction(() => serviceProvider, { allowSecrets: true }),
      /zod/,
    );
  });

  it("every shipped provider keeps the methods its module defines (and gets an update where it diffs)", () => {
    for (const name of NAMES) {
      const source = PROVIDER_SOURCES[name];
      const inProcess = require(`../../${source.file}`)[source.exportName] as Record<string, unknown>;
      const own = Object.keys(inProcess).filter((k) => typeof inProcess[k] === "function");
      assert.ok(own.length > 0, name);
      // providers/code-move.ts: where there is a diff, an update moves older state over.
      const expected = [...new Set([...own, ...(own.includes("diff") ? ["update"] : [])])].sort();
      const provider = shippedProvider(name);
      assert.deepEqual(Object.keys(provider).sort(), expected, name);
      assert.equal(provider.configure, undefined, `${name}: already configured`);
    }
  });

  it("unpackShipped gives back a bundle from a provider configuration, and nothing where it is absent", () => {
    const config = codeProviderConfig();
    assert.equal(unpackShipped(config, "hostKey"), bundleProviderSource("hostKey"));
    assert.equal(unpackShipped({}, "hostKey"), undefined);
    assert.equal(unpackShipped({ hostKey: 42 }, "hostKey"), undefined);
  });
});

describe("the code provider's configuration", function () {
  this.timeout(60_000);

  it("carries every bundle of PROVIDER_SOURCES, each with the sha256 of its packed text, and the loader's body", () => {
    const config = codeProviderConfig();
    assert.deepEqual(Object.keys(config).sort(), [CODE_LOADER_KEY, ...NAMES.flatMap((n) => [n, `${n}Sha256`])].sort());
    assert.equal(config[CODE_LOADER_KEY], loaderBodyText());
    for (const name of NAMES) {
      const packed = config[name]!;
      assert.equal(typeof packed, "string", name);
      assert.match(config[`${name}Sha256`]!, /^[0-9a-f]{64}$/, name);
      assert.equal(config[`${name}Sha256`], bundleSha256(packed), name);
      assert.equal(packed, packBundle(bundleProviderSource(name)), `${name}: the bundle of this checkout`);
    }
  });

  it("is named fleet-code-<12 hex>: stable for the same code, new when any bundle or the loader's body changes", () => {
    const config = codeProviderConfig();
    const name = codeProviderName(config);
    assert.match(name, new RegExp(`^${CODE_PROVIDER_PREFIX}[0-9a-f]{12}$`));
    assert.equal(codeProviderName(), name, "the default is this fleet's configuration");
    assert.equal(codeProviderName({ ...config }), name);
    assert.equal(codeProviderName(codeProviderConfig()), name);
    const seen = new Set([name]);
    for (const bundle of NAMES) {
      const packed = packBundle(`${bundleProviderSource(bundle)}\n// changed`);
      const changed = codeProviderName({ ...config, [bundle]: packed, [`${bundle}Sha256`]: bundleSha256(packed) });
      assert.match(changed, new RegExp(`^${CODE_PROVIDER_PREFIX}[0-9a-f]{12}$`));
      assert.ok(!seen.has(changed), `${bundle}: a changed bundle is a new provider (${changed})`);
      seen.add(changed);
    }
    const body = codeProviderName({ ...config, [CODE_LOADER_KEY]: `${loaderBodyText()}\n// changed` });
    assert.ok(!seen.has(body), `a changed loader body is a new provider (${body})`);
    // The packed text alone is not the name: its sha256 is (the loader refuses a mismatch).
    assert.equal(codeProviderName({ ...config, service: "changed" }), name);
  });
});

describe("the __provider text", function () {
  this.timeout(60_000);

  it("is what Pulumi's dynamic-provider host loads: handler(), then configure with the provider's config", async () => {
    const text = shippedProviderText("hostKey");
    const provider = await hostLoad(text, codeProviderConfig());
    assert.deepEqual(Object.keys(provider).sort(), ["configure", "create", "diff", "update"]);
    assert.deepEqual(await provider.diff("id", {}, {}), { changes: false });
    // The bundle is wrapped by providers/code-move.ts: older state is a diff, and its update runs nothing.
    const olds = { publicKey: "ssh-ed25519 AAAA", __provider: "exports.handler = () => ({});" };
    assert.deepEqual(await provider.diff("id", olds, {}), { changes: true });
    assert.deepEqual(await provider.update("id", olds, {}), { outs: { publicKey: "ssh-ed25519 AAAA" } });
    assert.deepEqual(await provider.diff("id", { ...olds, __provider: text }, {}), { changes: false });
  });

  it("is small, starts with the loader mark, and is the same text on every call", () => {
    for (const name of NAMES) {
      const text = shippedProviderText(name);
      assert.ok(text.length < 4096, `${name}: ${text.length} B`);
      assert.ok(text.startsWith(`${CODE_LOADER_MARK}\n`), name);
      assert.ok(isCodeLoaderText(text), name);
      assert.equal(text, shippedProviderText(name));
      assert.equal(text, loaderModuleText(name));
      assert.equal(shippedProviderTextOf(shippedProvider(name)), text, name);
    }
    assert.notEqual(shippedProviderText("service"), shippedProviderText("backup"), "a loader names its bundle");
    assert.equal(shippedProviderTextOf({}), undefined);
  });

  it("carries no code and no hash: the same text for every fleet version", () => {
    const config = codeProviderConfig();
    for (const name of NAMES) {
      const text = shippedProviderText(name);
      for (const [key, value] of Object.entries(config)) {
        assert.ok(!text.includes(value.slice(0, 64)), `${name}'s loader contains ${key}`);
      }
    }
    assert.ok(!shippedProviderText("service").includes(config["serviceSha256"]!));
  });

  it("stays the same text when the code changes (a fleet whose bundles differ)", () => {
    // Another fleet version: providers/ship.ts loaded afresh, with a service bundle of its own
    // (as build/bundle.ts defines FLEET_BUNDLED in the bundles it builds).
    const file = require.resolve("../../providers/ship");
    const original = require.cache[file];
    const g = globalThis as { FLEET_BUNDLED?: unknown };
    const packed = packBundle(`${bundleProviderSource("service")}\n// another fleet version`);
    g.FLEET_BUNDLED = { providers: { service: { packed, sha256: bundleSha256(packed), inputs: [] } } };
    let other: typeof ship;
    let otherConfig: Record<string, string>;
    try {
      delete require.cache[file];
      other = require(file) as typeof ship;
      otherConfig = other.codeProviderConfig(); // (payloads are read on first use)
    } finally {
      delete g.FLEET_BUNDLED;
      if (original) require.cache[file] = original;
    }
    assert.equal(otherConfig["serviceSha256"], bundleSha256(packed));
    assert.notEqual(otherConfig["serviceSha256"], codeProviderConfig()["serviceSha256"]);
    assert.equal(otherConfig["hostKeySha256"], codeProviderConfig()["hostKeySha256"], "the others are this fleet's");
    assert.notEqual(other.codeProviderName(otherConfig), codeProviderName());
    for (const name of NAMES) assert.equal(other.shippedProviderText(name), shippedProviderText(name), name);
  });
});

/** A hand-made bundle: counts its evaluations (per marker) and records a run of its check. */
function tinyBundle(marker: string): { packed: string; sha256: string } {
  const code = [
    `// ${marker}`,
    `const seen = (globalThis.__fleetTestEvaluated ??= {});`,
    `seen[${JSON.stringify(marker)}] = (seen[${JSON.stringify(marker)}] ?? 0) + 1;`,
    `exports.fleetProvider = { check: async (olds, news) => { globalThis.__ran = true; return { inputs: { ...news, checked: true } }; } };`,
  ].join("\n");
  const packed = packBundle(code);
  return { packed, sha256: bundleSha256(packed) };
}

/** A loader for the hand-made bundle under `config`, with the loader's body as the code provider carries it. */
const tinyLoader = (config: Record<string, string>) =>
  loaderFor("tinyBundle", { [CODE_LOADER_KEY]: loaderBodyText(), ...config });

const g = globalThis as { __ran?: boolean; __fleetTestEvaluated?: Record<string, number>; __fleetCode?: object };
const evaluations = (marker: string) => g.__fleetTestEvaluated?.[marker] ?? 0;
/** Arguments for each method of the dynamic-provider interface. */
const ARGS: Record<(typeof CODE_METHODS)[number], unknown[]> = {
  check: [{}, {}],
  diff: ["id", {}, {}],
  create: [{}],
  read: ["id", {}],
  update: ["id", {}, {}],
  delete: ["id", {}],
};

function call(provider: object, method: (typeof CODE_METHODS)[number]): Promise<unknown> {
  const fn = (provider as Record<string, unknown>)[method];
  assert.equal(typeof fn, "function", `the loader has ${method}`);
  return (fn as (...a: unknown[]) => Promise<unknown>).apply(provider, ARGS[method]);
}

describe("the loader's check of the code", () => {
  beforeEach(() => delete g.__ran);
  after(() => {
    delete g.__ran;
    delete g.__fleetTestEvaluated;
  });

  it("a tampered bundle (one character changed) runs nothing: every method rejects, naming the bundle", async () => {
    const { packed, sha256 } = tinyBundle("tampered");
    const i = Math.floor(packed.length / 2);
    const tampered = packed.slice(0, i) + (packed[i] === "A" ? "B" : "A") + packed.slice(i + 1);
    assert.notEqual(tampered, packed);
    const loader = tinyLoader({ tinyBundle: tampered, tinyBundleSha256: sha256 });
    for (const method of CODE_METHODS) {
      await assert.rejects(call(loader, method), (error: Error) => {
        assert.match(error.message, /does not match its sha256/, method);
        assert.match(error.message, /Nothing ran/, method);
        assert.match(error.message, /tinyBundle/, method);
        assert.match(error.message, new RegExp(sha256.slice(0, 16)), `${method}: names the expected hash`);
        return true;
      });
    }
    assert.equal(g.__ran, undefined, "the bundle's check never ran");
    assert.equal(evaluations("tampered"), 0, "the bundle was never evaluated");
    assert.ok(!(sha256 in (g.__fleetCode ?? {})) && !(bundleSha256(tampered) in (g.__fleetCode ?? {})));
  });

  it("a right bundle under a wrong sha256 runs nothing either", async () => {
    const { packed } = tinyBundle("wrong-hash");
    const loader = tinyLoader({ tinyBundle: packed, tinyBundleSha256: "0".repeat(64) });
    for (const method of CODE_METHODS) await assert.rejects(call(loader, method), /does not match its sha256/);
    assert.equal(g.__ran, undefined);
    assert.equal(evaluations("wrong-hash"), 0);
  });

  it("a real bundle that was tampered with is never evaluated (the service provider)", async () => {
    const config = codeProviderConfig();
    const packed = config["service"]!;
    const tampered = `${packed.slice(0, -5)}${packed.slice(-5) === "AAAAA" ? "BBBBB" : "AAAAA"}`;
    const cached = Object.keys(g.__fleetCode ?? {}).length;
    const loader = loaderFor("service", { ...config, service: tampered });
    for (const method of CODE_METHODS) {
      await assert.rejects(call(loader, method), /fleet: the code of this service resource does not match/);
    }
    assert.equal(Object.keys(g.__fleetCode ?? {}).length, cached, "nothing new was evaluated");
  });

  it("a missing bundle or hash: every method rejects, saying so", async () => {
    const { packed, sha256 } = tinyBundle("missing");
    const configs: Record<string, string>[] = [
      {},
      { tinyBundle: packed },
      { tinyBundleSha256: sha256 },
      { other: packed, otherSha256: sha256 },
    ];
    for (const config of configs) {
      const loader = tinyLoader(config);
      for (const method of CODE_METHODS) {
        await assert.rejects(call(loader, method), (error: Error) => {
          assert.match(error.message, /missing from its provider's configuration/, method);
          assert.match(error.message, /Nothing ran/, method);
          assert.match(error.message, /tinyBundle/, method);
          return true;
        });
      }
    }
    assert.equal(g.__ran, undefined);
    assert.equal(evaluations("missing"), 0);
  });

  it("an unconfigured loader, or one whose configuration has no loader body, runs nothing", async () => {
    const { packed, sha256 } = tinyBundle("unconfigured");
    const requireFromString = require("require-from-string") as (code: string) => { handler(): any };
    const unconfigured = requireFromString(loaderModuleText("tinyBundle")).handler();
    // As the host configures it, from a provider configuration without `fleetLoader`.
    const bodiless = await hostLoad(loaderModuleText("tinyBundle"), { tinyBundle: packed, tinyBundleSha256: sha256 });
    for (const loader of [unconfigured, bodiless]) {
      for (const method of CODE_METHODS) {
        await assert.rejects(call(loader, method), (error: Error) => {
          assert.match(error.message, /tinyBundle/, method);
          assert.match(error.message, /its provider/, method);
          assert.match(error.message, /nothing ran/i, method);
          return true;
        });
      }
    }
    assert.equal(g.__ran, undefined);
    assert.equal(evaluations("unconfigured"), 0);
  });

  it("a loader body that throws: every method rejects with its error", async () => {
    const { packed, sha256 } = tinyBundle("body-throws");
    const loader = loaderFor("tinyBundle", {
      [CODE_LOADER_KEY]: 'throw new Error("a broken loader body");',
      tinyBundle: packed,
      tinyBundleSha256: sha256,
    });
    for (const method of CODE_METHODS) await assert.rejects(call(loader, method), /a broken loader body/);
    assert.equal(evaluations("body-throws"), 0);
  });

  it("a right bundle runs, and a method the bundle lacks is absent from the loader", async () => {
    const { packed, sha256 } = tinyBundle("right");
    const loader = tinyLoader({ tinyBundle: packed, tinyBundleSha256: sha256 });
    assert.deepEqual(Object.keys(loader).sort(), ["check", "configure"]);
    for (const method of CODE_METHODS.filter((m) => m !== "check")) assert.ok(!(method in loader), method);
    assert.deepEqual(await loader.check!({}, { a: 1 }), { inputs: { a: 1, checked: true } });
    assert.equal(g.__ran, true);
  });

  it("evaluates a bundle once per sha256 per process, even for two loader objects", async () => {
    const { packed, sha256 } = tinyBundle("once");
    const config = { tinyBundle: packed, tinyBundleSha256: sha256 };
    const first = tinyLoader(config);
    const second = tinyLoader(config);
    assert.notEqual(first, second);
    assert.deepEqual(await first.check!({}, { n: 1 }), { inputs: { n: 1, checked: true } });
    assert.deepEqual(await second.check!({}, { n: 2 }), { inputs: { n: 2, checked: true } });
    assert.equal(evaluations("once"), 1);
    assert.ok(sha256 in (g.__fleetCode ?? {}), "cached by its sha256");
    // Another bundle (another hash) is evaluated on its own.
    const other = tinyBundle("once-other");
    await tinyLoader({ tinyBundle: other.packed, tinyBundleSha256: other.sha256 }).check!({}, {});
    assert.equal(evaluations("once-other"), 1);
    assert.equal(evaluations("once"), 1);
  });
});
