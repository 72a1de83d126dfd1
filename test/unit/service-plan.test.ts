import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { depsHash } from "../../decisions/release-id";
import type { ImageArtifact } from "../../providers/image/model";
import { planRelease, planService, planSettings, startCommand } from "../../source/plan";
import { GitApp } from "../support/git-app";

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const health = { url: "http://127.0.0.1:8080/health" };

function directory(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-plan-"));
  for (const [f, c] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), c);
  return dir;
}

function artifact(current: string, ...older: string[]): ImageArtifact {
  const id = (c: string) => `sha256:${c.repeat(64)}`;
  return {
    name: "agent",
    imageId: id(current),
    tags: ["agent:x"],
    dockerHost: "",
    keep: 3,
    history: [id(current), ...older.map(id)],
  };
}

describe("source/plan: a service's release, decided once", () => {
  it("git: the short commit, the commit, the repository and the install hash of that commit's files", () => {
    const app = new GitApp(PYAPP);
    const head = app.commit("deps", { "requirements.txt": "flask\n" });
    const plan = planRelease({
      name: "web",
      source: { git: app.dir },
      install: { run: "pip install -r requirements.txt", when: ["requirements.txt"] },
    });
    assert.equal(plan.releaseId, head.slice(0, 12));
    assert.equal(plan.commit, head);
    assert.deepEqual(plan.source, { kind: "git", repo: app.dir, commit: head });
    assert.deepEqual(plan.install, {
      run: "pip install -r requirements.txt",
      when: ["requirements.txt"],
      hash: depsHash(
        [{ path: "requirements.txt", content: Buffer.from("flask\n") }],
        "pip install -r requirements.txt",
      ),
    });
    assert.equal(plan.pinned, undefined);
  });

  it("git with paths: the last commit touching them; a dirty tree is refused by path", () => {
    const app = new GitApp(PYAPP);
    const backend = app.commit("backend", { "backend/x.py": "1\n" });
    app.commit("frontend", { "frontend/x.js": "1\n" });
    assert.equal(planRelease({ name: "api", source: { git: app.dir, paths: ["backend"] } }).commit, backend);
    fs.writeFileSync(path.join(app.dir, "app.py"), "changed\n");
    assert.throws(
      () => planRelease({ name: "api", source: { git: app.dir } }),
      /services\.api\.source\.git: .* has uncommitted changes/,
    );
  });

  it("a build is part of the release: the same commit built differently is another release", () => {
    const app = new GitApp(PYAPP);
    const plain = planRelease({ name: "web", source: { git: app.dir } }).releaseId;
    const built = planRelease({ name: "web", source: { git: app.dir }, build: "npm run build" }).releaseId;
    const other = planRelease({ name: "web", source: { git: app.dir }, build: "make" }).releaseId;
    assert.match(built, new RegExp(`^${plain}-b[0-9a-f]{6}$`));
    assert.notEqual(built, other);
    const dir = directory({ "a.txt": "a" });
    assert.match(
      planRelease({ name: "web", source: { path: dir }, build: "make" }).releaseId,
      /^d-[0-9a-f]{16}-b[0-9a-f]{6}$/,
    );
  });

  it("a pinned git service deploys the pinned release at the pinned commit, its install hash that commit's, even from a dirty tree", () => {
    const app = new GitApp(PYAPP);
    const old = app.commit("old deps", { "requirements.txt": "flask==1\n" });
    app.commit("new deps", { "requirements.txt": "flask==2\n" });
    fs.writeFileSync(path.join(app.dir, "app.py"), "uncommitted\n");
    const install = { run: "pip install -r requirements.txt", when: ["requirements.txt"] };
    const pin = { releaseId: `${old.slice(0, 12)}-b123456`, commit: old };
    const plan = planRelease({ name: "web", source: { git: app.dir, ref: "main" }, install, build: "make", pin });
    assert.equal(plan.releaseId, pin.releaseId, "exactly the pinned release, whatever the build says");
    assert.equal(plan.commit, old);
    assert.deepEqual(plan.source, { kind: "git", repo: app.dir, commit: old });
    assert.equal(
      plan.install!.hash,
      depsHash([{ path: "requirements.txt", content: Buffer.from("flask==1\n") }], install.run),
    );
    assert.equal(plan.pinned, true);
  });

  it("a directory: a content hash, the commit is the release id; pinned, the pin's release with today's files", () => {
    const dir = directory({ "app.py": "print(1)\n" });
    const plan = planRelease({ name: "web", source: { path: dir, exclude: ["*.log"] } });
    assert.match(plan.releaseId, /^d-[0-9a-f]{16}$/);
    assert.equal(plan.commit, plan.releaseId);
    assert.deepEqual(plan.source, { kind: "path", path: dir, exclude: [".git", "node_modules", "*.log"] });
    const pinned = planRelease({
      name: "web",
      source: { path: dir },
      pin: { releaseId: "d-0123456789abcdef", commit: "d-0123456789abcdef" },
    });
    assert.equal(pinned.releaseId, "d-0123456789abcdef");
    assert.equal(pinned.commit, "d-0123456789abcdef");
    assert.equal(pinned.source.kind, "path");
    assert.equal(pinned.pinned, true);
    assert.throws(
      () => planRelease({ name: "web", source: { path: path.join(dir, "nope") } }),
      /services\.web\.source\.path: .* is not a directory/,
    );
  });

  it("an image: its short id; pinned, the pinned build from the image's history, or a clear refusal", () => {
    const image = artifact("b", "a");
    const plan = planRelease({ name: "agent", source: { image } });
    assert.equal(plan.releaseId, `i-${"b".repeat(12)}`);
    assert.equal(plan.commit, plan.releaseId);
    assert.deepEqual(plan.source, { kind: "image", ...image });
    const pinned = planRelease({
      name: "agent",
      source: { image },
      pin: { releaseId: `i-${"a".repeat(12)}`, commit: `i-${"a".repeat(12)}` },
    });
    assert.equal(pinned.releaseId, `i-${"a".repeat(12)}`);
    assert.equal(
      pinned.source.kind === "image" && pinned.source.imageId,
      `sha256:${"a".repeat(64)}`,
      "runs the pinned build",
    );
    assert.equal(pinned.pinned, true);
    assert.throws(
      () =>
        planRelease({
          name: "agent",
          source: { image },
          pin: { releaseId: `i-${"c".repeat(12)}`, commit: "x".repeat(6) },
        }),
      /pins\.agent: release i-c{12} is none of the image's kept builds \(i-b{12}, i-a{12}\)/,
    );
    assert.throws(
      () => planRelease({ name: "agent", source: { image }, build: "make" }),
      /services\.agent: install and build go with git or path sources/,
    );
  });
});

describe("source/plan: the rest of a service's inputs and their defaults", () => {
  it("fills every default once; git and path sources need start", () => {
    const s = planSettings({ name: "web", source: { path: PYAPP }, start: "python3 app.py", health });
    assert.deepEqual(s, {
      name: "web",
      root: "/srv/fleet",
      unitName: "web",
      env: {},
      health: { url: health.url, expectStatus: 200, timeoutMs: 30_000, intervalMs: 100 },
      keepReleases: 5,
      breakStaleLock: false,
      stepTimeoutMs: 600_000,
      minFreeDiskMb: 512,
    });
    assert.throws(
      () => planSettings({ name: "web", source: { path: PYAPP }, health }),
      /services\.web\.start: give the command/,
    );
    assert.throws(
      () => planSettings({ name: "web", source: { path: PYAPP }, start: "x", health, stepTimeout: "soon" }),
      /services\.web\.stepTimeout/,
    );
  });

  it("an image's default start runs the release's image with the service's environment, secret names included", () => {
    const image = artifact("b");
    const source = planRelease({ name: "agent", source: { image } }).source;
    assert.match(
      startCommand({ name: "agent", env: { PORT: "1" } }, source, ["TOKEN"]),
      /exec docker run --rm --name '?agent'? --network host -e FLEET_COMMIT -e FLEET_RELEASE -e PORT -e TOKEN sha256:b{64}$/,
    );
    assert.match(startCommand({ name: "agent", unitName: "agent-v2" }, source, []), /--name '?agent-v2'? /);
    assert.equal(startCommand({ name: "agent", start: "./run" }, source, []), "./run");
  });

  it("planService: runAs defaults to the connection's user, the unit runs start as it, a pin says so", () => {
    const plan = planService(
      {
        name: "web",
        source: { path: PYAPP },
        start: "python3 app.py",
        health,
        pin: { releaseId: "d-0123456789abcdef", commit: "d-0123456789abcdef" },
      },
      { connectionUser: "deploy", secretEnvKeys: [] },
    );
    assert.equal(plan.runAs, "deploy");
    assert.match(plan.unit, /^User=deploy$/m);
    assert.match(plan.unit, /^ExecStart=\/bin\/sh -c "python3 app\.py"$/m);
    assert.match(plan.unit, /^WorkingDirectory=\/srv\/fleet\/web\/current$/m);
    assert.equal(plan.releaseId, "d-0123456789abcdef");
    assert.equal(plan.pinned, true);
    const own = planService(
      { name: "web", source: { path: PYAPP }, start: "x", health, runAs: "app" },
      { connectionUser: "deploy", secretEnvKeys: [] },
    );
    assert.equal(own.runAs, "app");
  });
});
