import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { load } from "js-yaml";
import { parseFleetConfig } from "../../config/schema";

const ROOT = path.resolve(__dirname, "..", "..");

/** The `fleet:` keys of a stack file, as index.ts reads them (without the namespace). */
function fleetConfig(file: string): Record<string, unknown> {
  const doc = load(fs.readFileSync(path.join(ROOT, file), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config)
      .filter(([k]) => k.startsWith("fleet:"))
      .map(([k, v]) => [k.slice("fleet:".length), v]),
  );
}

describe("stack files", () => {
  for (const file of ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]) {
    it(`${file} passes the config schema`, () => {
      const cfg = parseFleetConfig({ ...fleetConfig(file), privateKeys: {} });
      assert.ok(Object.keys(cfg.services).length > 0);
    });
  }

  it("the dev stack deploys the demo app in this repository to a loopback test server", () => {
    const cfg = parseFleetConfig(fleetConfig("Pulumi.dev.yaml"));
    const demo = cfg.hosts["demo"]!;
    assert.ok(demo.kind === "existing" && /^127\./.test(demo.address));
    assert.ok(fs.existsSync(path.join(ROOT, cfg.services["hello"]!.source.path!, "app.py")));
  });
});
