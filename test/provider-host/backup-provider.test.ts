import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { UNKNOWN, withProvider } from "../support/provider-host";
import { providerHostForSuite } from "../support/provider-host-suite";
import { backupInputs } from "../support/provider-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as DatabaseBackup registers it.
const backupProvider = shippedProvider("backup");

const spec = backupInputs();

/** The backup provider's check inside Pulumi's real provider host: the model's rules, as config applies them. */
describe("Backup provider's check in Pulumi's provider host", function () {
  this.timeout(30_000);
  const host = providerHostForSuite();

  const check = async (over: object) =>
    (await host().check("urn:pulumi:test::fleet::x::db", {}, await withProvider(backupProvider, { ...spec, ...over })))
      .failures;

  it("accepts a valid spec and names each bad field", async () => {
    assert.deepEqual(await check({}), []);
    const failures = await check({
      postgres: { ...spec.postgres, database: "d".repeat(64), port: 65536 },
      verifyTables: ["users", "Users"],
      restore: "../etc",
    });
    assert.deepEqual(failures.map((f) => f.property).sort(), [
      "postgres.database",
      "postgres.port",
      "restore",
      "verifyTables[1]",
    ]);
  });

  it("lets preview's unknowns through", async () => {
    assert.deepEqual(await check({ connection: UNKNOWN, releases: [UNKNOWN], postgres: UNKNOWN }), []);
  });
});
