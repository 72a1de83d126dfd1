import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as path from "path";
import { UNKNOWN, serializeProvider, withProvider } from "../support/provider-host";
import { providerHostForSuite } from "../support/provider-host-suite";
import { serviceSpec } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/**
 * The Service provider's preview path (check, diff) inside Pulumi's real provider host: no
 * server needed, because preview never reaches create/update. The deploy path runs against
 * real servers in test/real/service.test.ts.
 */

const APP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const connection = {
  host: "127.0.0.11",
  port: 22,
  user: "root",
  privateKey: "KEY-MATERIAL-XYZ",
  hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd",
};
const spec = serviceSpec({
  name: "web",
  connection,
  source: { path: APP },
  start: "python3 app.py",
  env: { PORT: "8080" },
  secretEnv: { TOKEN: "tok" },
  health: { url: "http://127.0.0.1:8080/api/health" },
});
// What the engine stores after a deploy: the spec echoed plus derived outputs.
const oldOutputs = {
  ...spec,
  host: "127.0.0.11",
  path: "/srv/fleet-test/web/releases/x",
  deployedAt: "2026-11-22T00:00:00Z",
  depsReinstalled: false,
  previousReleaseId: "",
  retainedReleases: [spec.releaseId],
};

describe("Service provider in Pulumi's provider host (preview path)", function () {
  this.timeout(30_000);
  const host = providerHostForSuite();

  it("serializes to a small loader with no secret and no code inside", async () => {
    const text = await serializeProvider(serviceProvider);
    // The loader's first part (providers/ship.ts): every RPC and each resource's state carry it twice.
    assert.ok(text.length < 600, `__provider is ${text.length} bytes; every RPC and every resource pays for its size`);
    assert.ok(!text.includes("KEY-MATERIAL-XYZ"));
    assert.match(text, /c\.fleetLoader/, "the code comes from the provider's configuration, not from __provider");
  });

  it("check accepts a valid spec and names bad fields", async () => {
    const ok = await host().check(
      "urn:pulumi:test::fleet::x::web",
      {},
      await withProvider(serviceProvider, spec as never),
    );
    assert.deepEqual(ok.failures, []);
    const bad = await host().check(
      "urn:pulumi:test::fleet::x::web",
      {},
      await withProvider(serviceProvider, { ...spec, name: "../x", keepReleases: 1 } as never),
    );
    assert.deepEqual(bad.failures.map((f) => f.property).sort(), ["keepReleases", "name"]);
  });

  it("check runs the model's rules inside the host (the bundle requires zod there)", async () => {
    const r = await host().check(
      "urn:pulumi:test::fleet::x::web",
      {},
      await withProvider(serviceProvider, {
        ...spec,
        // The longest URL the config accepts, a body line with a carriage return, an unknown value.
        health: { ...spec.health, url: `http://h/${"a".repeat(8183)}`, bodyContains: "a\rb" },
        env: { PORT: UNKNOWN, "A-B": "1" },
      } as never),
    );
    assert.deepEqual(r.failures, [
      {
        property: "env.A-B",
        reason: "environment variable names are letters, digits and '_', not starting with a digit",
      },
      { property: "health.bodyContains", reason: "must be a single line" },
    ]);
  });

  it("check lets preview's unknowns through", async () => {
    const r = await host().check(
      "urn:pulumi:test::fleet::x::web",
      {},
      await withProvider(serviceProvider, { ...spec, connection: UNKNOWN, runAs: UNKNOWN, unit: UNKNOWN } as never),
    );
    assert.deepEqual(r.failures, []);
  });

  it("diff (with old outputs, as the engine sends): same, update, replace", async () => {
    const news = async (over: object) => withProvider(serviceProvider, { ...spec, ...over } as never);
    const same = await host().diff("id", oldOutputs as never, await news({}), spec as never);
    assert.equal(same.changes, false);
    const release = await host().diff(
      "id",
      oldOutputs as never,
      await news({ releaseId: "d-0000000000000000", commit: "d-0000000000000000" }),
      spec as never,
    );
    assert.deepEqual([release.changes, release.replaces], [true, []]);
    const moved = await host().diff(
      "id",
      oldOutputs as never,
      await news({ connection: { ...connection, host: "127.0.0.12" } }),
      spec as never,
    );
    assert.deepEqual([moved.changes, moved.replaces, moved.deleteBeforeReplace], [true, ["connection"], false]);
    const unknownHost = await host().diff(
      "id",
      oldOutputs as never,
      await news({ connection: UNKNOWN }),
      spec as never,
    );
    assert.deepEqual(unknownHost.replaces, ["connection"]);
  });
});
