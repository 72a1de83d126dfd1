import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseFleetConfig } from "../../config/schema";
import { diffService } from "../../decisions/service-diff";
import { planSettings, startCommand, type SettingsArgs } from "../../source/plan";
import { checkServiceInputs } from "../../providers/service/check";
import { removeServiceDirLines, sharedLinkLines } from "../../commands/service-shared";
import { hookScript, preSwitchLines } from "../../commands/service-hooks";
import { activateScript } from "../../commands/service";
import { configProblems, refusedConfigProblems, web1Host, webService } from "../support/config-fixtures";
import { serviceSpec } from "../support/service-inputs";

const cfg = (service: Record<string, unknown>) => ({
  hosts: { web1: web1Host() },
  services: { web: { ...webService(), ...service } },
});

/** planSettings of a parsed service's shared and hooks (as index.ts passes them on). */
function settingsOf(parsed: { shared?: SettingsArgs["shared"]; hooks?: SettingsArgs["hooks"] }) {
  return planSettings({
    name: "web",
    source: { path: "./app" },
    start: "true",
    health: { url: "http://127.0.0.1:1/h" },
    ...(parsed.shared ? { shared: parsed.shared } : {}),
    ...(parsed.hooks ? { hooks: parsed.hooks } : {}),
  });
}

/** Runs `lines` under a real sh with D and R set to fresh dirs and RUN_AS the current user. */
function runLocal(lines: string[], setup: (d: string, r: string) => void = () => undefined) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-shared-"));
  const d = path.join(base, "svc");
  const r = path.join(d, "releases", "r1");
  fs.mkdirSync(r, { recursive: true });
  fs.mkdirSync(path.join(d, "shared"));
  setup(d, r);
  const script = [
    "set -eu",
    "phase() { :; }",
    `D='${d}'; R='${r}'; RUN_AS=$(id -un)`,
    `as_user() { s_=$1; shift; /bin/sh -c "$s_" sh "$@"; }`,
    ...lines,
    "",
  ].join("\n");
  const out = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8" });
  return { d, r, status: out.status, stdout: out.stdout, stderr: out.stderr };
}

describe("shared: in the config, the plan and the diff", () => {
  it("takes dirs and files (path → initial content), defaults both, and plans them as given", () => {
    const parsed = parseFleetConfig(cfg({ shared: { dirs: ["uploads"] } })).services["web"]!;
    assert.deepEqual(parsed.shared, { dirs: ["uploads"], files: {} });
    const settings = settingsOf(parsed);
    assert.deepEqual(settings.shared, { dirs: ["uploads"], files: {} });
    assert.equal(settingsOf({ shared: { dirs: [] } }).shared, undefined, "nothing shared: none");
    assert.equal(settings.deleteSharedOnDestroy, undefined);
  });

  it("refuses fleet's own names, paths outside the release, a path twice and one inside another, each at its field", () => {
    const problems = (shared: unknown) => refusedConfigProblems(cfg({ shared })).join("\n");
    assert.match(problems({ dirs: ["env"] }), /services\.web\.shared\.dirs\.0: must not start with env, instances/);
    assert.match(problems({ dirs: ["instances/x"] }), /shared\.dirs\.0: must not start with env/);
    assert.match(problems({ files: { REVISION: "" } }), /shared\.files\.REVISION: must not start with/);
    assert.match(problems({ files: { ".fleet-staged": "" } }), /must not start with/);
    assert.match(problems({ dirs: ["../up"] }), /shared\.dirs\.0: must be a path inside the release/);
    assert.match(problems({ dirs: ["/abs"] }), /shared\.dirs\.0: must be a path inside the release/);
    assert.match(problems({ dirs: ["a", "a"] }), /shared\.dirs\.1: "a" is shared twice/);
    assert.match(problems({ dirs: ["a"], files: { a: "" } }), /shared\.files\.a: "a" is shared twice/);
    assert.match(
      problems({ dirs: ["data"], files: { "data/db.sqlite": "" } }),
      /shared\.files\["data\/db\.sqlite"\]: "data\/db\.sqlite" is inside the shared "data"/,
    );
    assert.match(
      problems({ dirs: ["data/a/b", "data/a"] }),
      /shared\.dirs\.0: "data\/a\/b" is inside the shared "data\/a"/,
    );
    assert.match(problems({ dirs: ["x"], links: [] }), /shared: .*links/);
    // Siblings with a common prefix are not nested.
    assert.deepEqual(configProblems(cfg({ shared: { dirs: ["data", "data2", "database/x"] } })), []);
  });

  it("an image source needs containerDir (its container does not see the release); a release of files takes none", () => {
    const raw = (shared: unknown) => ({
      ...cfg({ source: { image: "app" }, start: undefined, shared }),
      images: { app: { kind: "docker", context: "./web", validate: { url: "http://127.0.0.1:1/h" } } },
    });
    assert.match(
      refusedConfigProblems(raw({ dirs: ["uploads"] })).join("\n"),
      /services\.web\.shared\.containerDir: an image's container does not see the release directory: give containerDir/,
    );
    assert.deepEqual(configProblems(raw({ dirs: ["uploads"], containerDir: "/app" })), []);
    assert.match(
      refusedConfigProblems(cfg({ shared: { dirs: ["x"], containerDir: "/app" } })).join("\n"),
      /services\.web\.shared\.containerDir: containerDir goes with image sources/,
    );
  });

  it("an image's default docker run mounts each shared entry under containerDir", () => {
    const image = { imageId: `sha256:${"a".repeat(64)}` } as never;
    const start = startCommand(
      { name: "agent", root: "/srv/f", shared: { dirs: ["logs"], files: { "conf/a.ini": "" }, containerDir: "/app/" } },
      { kind: "image", ...(image as object) } as never,
      [],
    );
    assert.match(
      start,
      / -v \/srv\/f\/agent\/shared\/logs:\/app\/logs -v \/srv\/f\/agent\/shared\/conf\/a\.ini:\/app\/conf\/a\.ini sha256:/,
    );
  });

  it("the provider's check applies the same rules to direct users of the component", () => {
    const spec = serviceSpec({
      name: "web",
      connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "K", hostKey: "ssh-ed25519 AAAA" },
      source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
      start: "python3 app.py",
      health: { url: "http://127.0.0.1:8080/health" },
    });
    const failures = (shared: unknown) =>
      checkServiceInputs({ ...spec, shared } as never).map((f) => `${f.property}: ${f.reason}`);
    assert.deepEqual(failures({ dirs: ["uploads"], files: { "a/b.ini": "x" } }), []);
    assert.match(failures({ dirs: ["env"], files: {} }).join("\n"), /shared\.dirs\[0\]: must not start with env/);
    assert.match(failures({ dirs: ["d"], files: { "d/x": "" } }).join("\n"), /is inside the shared "d"/);
  });

  it("a shared change is a deploy; hooks, deleteSharedOnDestroy and the host's name are only recorded", () => {
    const old = { name: "web", releaseId: "r1", shared: { dirs: ["a"], files: {} } };
    const moreShared = diffService(old, { ...old, shared: { dirs: ["a", "b"], files: {} } });
    assert.deepEqual([moreShared.changes, moreShared.recordOnly], [true, false]);
    for (const change of [{ hooks: { preSwitch: "true" } }, { deleteSharedOnDestroy: true }, { hostName: "web1" }]) {
      const d = diffService(old, { ...old, ...change });
      assert.deepEqual([d.changes, d.recordOnly], [true, true], JSON.stringify(change));
    }
  });
});

describe("hooks: in the config and the plan", () => {
  it("postDeploy takes a command or { run, rollbackOnFailure }; the plan has the long form", () => {
    const plan = (hooks: unknown) => settingsOf(parseFleetConfig(cfg({ hooks })).services["web"]!).hooks;
    assert.deepEqual(plan({ postDeploy: "./warm" }), { postDeploy: { run: "./warm", rollbackOnFailure: false } });
    assert.deepEqual(plan({ postDeploy: { run: "./warm" } }), {
      postDeploy: { run: "./warm", rollbackOnFailure: false },
    });
    assert.deepEqual(plan({ preSwitch: "a", postDeploy: { run: "b", rollbackOnFailure: true }, postRollback: "c" }), {
      preSwitch: "a",
      postDeploy: { run: "b", rollbackOnFailure: true },
      postRollback: "c",
    });
  });

  it("refuses an unknown hook and an empty command, naming the field", () => {
    assert.match(
      refusedConfigProblems(cfg({ hooks: { postdeploy: "x" } })).join("\n"),
      /services\.web\.hooks: .*postdeploy/,
    );
    assert.match(
      refusedConfigProblems(cfg({ hooks: { preSwitch: "" } })).join("\n"),
      /services\.web\.hooks\.preSwitch/,
    );
  });
});

describe("commands/service-shared.ts: linking shared entries, run by a real sh", () => {
  const shared = { dirs: ["data/uploads"], files: { "config/app.ini": "a=1\n" } };

  it("creates what is missing, links it over what the release had, and never rewrites existing data", () => {
    const r = runLocal(sharedLinkLines(shared), (d, rel) => {
      fs.mkdirSync(path.join(rel, "data", "uploads"), { recursive: true });
      fs.writeFileSync(path.join(rel, "data", "uploads", ".keep"), "");
      fs.mkdirSync(path.join(d, "shared", "config"));
      fs.writeFileSync(path.join(d, "shared", "config", "app.ini"), "edited\n");
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readlinkSync(path.join(r.r, "data", "uploads")), path.join(r.d, "shared", "data", "uploads"));
    assert.deepEqual(fs.readdirSync(path.join(r.d, "shared", "data", "uploads")), [], "the placeholder is not kept");
    assert.equal(fs.readFileSync(path.join(r.r, "config", "app.ini"), "utf8"), "edited\n");
    const again = runLocal(sharedLinkLines(shared));
    assert.equal(
      fs.readFileSync(path.join(again.r, "config", "app.ini"), "utf8"),
      "a=1\n",
      "a new file gets its content",
    );
  });

  it("refuses a release whose path to the shared entry goes through a link, and an entry of the other kind", () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-outside-"));
    fs.mkdirSync(path.join(outside, "uploads"));
    fs.writeFileSync(path.join(outside, "uploads", "precious"), "x");
    const linked = runLocal(sharedLinkLines(shared), (_d, rel) => fs.symlinkSync(outside, path.join(rel, "data")));
    assert.notEqual(linked.status, 0);
    assert.match(linked.stderr, /shared path data\/uploads: data is a link in the release/);
    assert.ok(fs.existsSync(path.join(outside, "uploads", "precious")), "nothing outside the release was removed");
    const kind = runLocal(sharedLinkLines(shared), (d) => {
      fs.mkdirSync(path.join(d, "shared", "data"));
      fs.writeFileSync(path.join(d, "shared", "data", "uploads"), "");
    });
    assert.notEqual(kind.status, 0);
    assert.match(kind.stderr, /shared\/data\/uploads exists and is not a directory/);
  });

  it("a delete keeps shared data but fleet's env files; with deleteShared, or with nothing but env, all goes", () => {
    const withData = (d: string) => {
      fs.mkdirSync(path.join(d, "shared", "uploads"));
      fs.writeFileSync(path.join(d, "shared", "env"), "SECRET=x\n");
      fs.mkdirSync(path.join(d, "shared", "instances"));
      fs.writeFileSync(path.join(d, "deploy.log"), "");
    };
    const kept = runLocal(removeServiceDirLines(false), withData);
    assert.equal(kept.status, 0, kept.stderr);
    assert.deepEqual(fs.readdirSync(kept.d), ["shared"]);
    assert.deepEqual(fs.readdirSync(path.join(kept.d, "shared")), ["uploads"]);
    assert.equal(kept.stdout.trim(), `kept_shared=${kept.d}/shared`);
    const all = runLocal(removeServiceDirLines(true), withData);
    assert.equal(fs.existsSync(all.d), false);
    const onlyEnv = runLocal(removeServiceDirLines(false), (d) => fs.writeFileSync(path.join(d, "shared", "env"), ""));
    assert.equal(fs.existsSync(onlyEnv.d), false);
    assert.equal(onlyEnv.stdout, "");
  });
});

describe("commands/service-hooks.ts: where the hooks go", () => {
  const spec = serviceSpec({
    name: "web",
    connection: { host: "127.0.0.11", port: 22, user: "root", privateKey: "K", hostKey: "ssh-ed25519 AAAA" },
    source: { path: path.resolve(__dirname, "..", "fixtures", "apps", "pyapp") },
    start: "python3 app.py",
    health: { url: "http://127.0.0.1:8080/health" },
    shared: { dirs: ["uploads"] },
    hooks: { preSwitch: "./check", postDeploy: "./warm" },
  });
  const plan = { stage: true, envFile: "A=1\n", token: "t", watchdogDeadlineMs: 60_000 };

  it("preSwitch runs after the shared links and the staged marker, before the switch; none without the hook", () => {
    const script = activateScript(spec, plan);
    const at = (s: string) => script.indexOf(s);
    assert.ok(at("phase shared") > 0 && at("phase shared") < at("phase pre-switch"));
    assert.ok(at(".fleet-staged") < at("phase pre-switch") && at("phase pre-switch") < at("phase switch"));
    assert.deepEqual(preSwitchLines({ ...spec, hooks: {} }, "A=1\n"), []);
  });

  it("postDeploy's script checks the lock is this deploy's, then decides before running the hook", () => {
    const script = hookScript(spec, { hook: "post-deploy", run: "./warm", previous: "r0", token: "tok", decide: true });
    assert.ok(script.indexOf("tok") < script.indexOf("phase post-deploy"));
    assert.ok(script.indexOf("decided") > 0 && script.indexOf("decided") < script.indexOf("phase post-deploy"));
    const noDecide = hookScript(spec, { hook: "post-rollback", run: "x", previous: "r1", token: "tok", decide: false });
    assert.equal(noDecide.includes("decided"), false);
  });
});
