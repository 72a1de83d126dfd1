import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { fleetError, isFleetError, outcomeMarker, summaryOf } from "../../model/errors";
import { outcomeOf, EXIT_CODES } from "../../decisions/outcome";
import { connectionFailed, isConnectionFailure, isRemoteStepFailure, remoteStepFailed } from "../../transport/errors";
import { configInvalid, isConfigInvalid } from "../../config/schema";
import { backendOf } from "../../config/backend";

/** fleet's one error (model/errors.ts): kind, hint, evidence, and a message the CLI can classify. */

const ROOT = path.resolve(__dirname, "..", "..");

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory())
      return e.name === "node_modules" || e.name === "test" || e.name.startsWith(".") ? [] : tsFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

describe("FleetError (model/errors.ts)", () => {
  it("its message is the summary, then the hint, then the marker of its kind", () => {
    const e = fleetError("rollback", "[h] release r1 failed its health gate", "Fix it and deploy again.", {
      host: "h",
    });
    assert.equal(
      e.message,
      `[h] release r1 failed its health gate\nFix it and deploy again.\n${outcomeMarker("rollback")}`,
    );
    assert.equal(e.kind, "rollback");
    assert.equal(e.hint, "Fix it and deploy again.");
    assert.equal(e.summary, "[h] release r1 failed its health gate");
    assert.equal(e.host, "h");
    assert.ok(e instanceof Error);
    assert.ok(isFleetError(e));
    assert.equal(outcomeOf(1, `error: ${e.message}`).code, EXIT_CODES.rollback);
  });

  it("evidence it was not given is absent, not undefined", () => {
    const e = fleetError("failure", "s", "h", { host: undefined, step: "x" });
    assert.ok(!("host" in e));
    assert.equal(e.step, "x");
  });

  it("a plain Error, or an Error of another name, is no FleetError", () => {
    assert.ok(!isFleetError(new Error("(fleet outcome: critical)")));
    assert.ok(!isFleetError(Object.assign(new Error("x"), { kind: "critical" })));
    assert.ok(!isFleetError("FleetError"));
  });

  it("a wrapping failure quotes the summary: the inner marker never competes with the outer kind", () => {
    const inner = connectionFailed("h:22", "cannot connect: ECONNREFUSED", "ECONNREFUSED");
    const outer = fleetError("build", `install failed\n${summaryOf(inner)}`, "Fix the install.");
    assert.equal(outcomeOf(1, outer.message).kind, "build");
    assert.equal(summaryOf(new Error("plain")), "plain");
  });

  it("a remote step's failure keeps its evidence as fields, secrets redacted in fields and message", () => {
    const e = remoteStepFailed(
      "10.0.0.1:22",
      "activate",
      "deploy --token s3cr3t",
      7,
      "out s3cr3t",
      "fleet-phase: build\nfleet-phase: switch\nerr s3cr3t",
      "exit code 7",
      ["s3cr3t"],
    );
    assert.ok(isRemoteStepFailure(e) && !isConnectionFailure(e));
    assert.equal(e.kind, "failure");
    assert.deepEqual(
      { host: e.host, step: e.step, exitCode: e.exitCode, phase: e.phase, stage: e.stage },
      { host: "10.0.0.1:22", step: "activate", exitCode: 7, phase: "switch", stage: "run" },
    );
    for (const text of [e.message, e.command, e.stdoutTail, e.stderrTail]) assert.ok(!text.includes("s3cr3t"), text);
    assert.match(e.message, /\n.+\n\(fleet outcome: failure\)$/);
    assert.ok(e.hint.length > 0 && e.message.includes(e.hint));
  });

  it("a connection failure says so by its stage and keeps its code", () => {
    const e = connectionFailed("h:22", "no SSH answer", "FLEET_CONNECT_TIMEOUT");
    assert.ok(isConnectionFailure(e) && !isRemoteStepFailure(e));
    assert.equal(e.code, "FLEET_CONNECT_TIMEOUT");
  });

  it("bad config is kind config with its problems; so is a bad PULUMI_BACKEND_URL", () => {
    const e = configInvalid(["hosts.a.address: required"]);
    assert.ok(isConfigInvalid(e));
    assert.deepEqual(e.problems, ["hosts.a.address: required"]);
    assert.equal(outcomeOf(1, e.message).code, EXIT_CODES.config);
    assert.throws(
      () => backendOf({ PULUMI_BACKEND_URL: "ftp://x" }, "/p", "/home/u"),
      (err: unknown) => isFleetError(err) && err.kind === "config" && /PULUMI_BACKEND_URL=ftp:\/\/x/.test(err.message),
    );
  });
});

describe("errors: one kind of error in the tree", () => {
  const files = tsFiles(ROOT).filter((f) => path.relative(ROOT, f) !== path.join("model", "errors.ts"));

  it("the scan sees the project's sources", () => {
    const names = files.map((f) => path.relative(ROOT, f));
    for (const f of ["transport/errors.ts", "config/schema.ts", "providers/service/failure.ts", "scripts/deploy.ts"])
      assert.ok(names.includes(f), f);
  });

  it("no other file subclasses Error or builds an Error with fields (model/errors.ts does)", () => {
    const offenders = files.flatMap((f) => {
      const text = fs.readFileSync(f, "utf8");
      return /class\s+\w+\s+extends\s+\w*Error\b/.test(text) || /Object\.assign\(\s*new Error\(/.test(text)
        ? [path.relative(ROOT, f)]
        : [];
    });
    assert.deepEqual(offenders, []);
  });
});
