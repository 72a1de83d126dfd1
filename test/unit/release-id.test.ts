import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { depsHash, gitReleaseBase, pathReleaseBase, releaseIdFor, treeHash } from "../../decisions/release-id";
import { resolveDepsHash, resolveRelease, walkTree } from "../../source/resolve";

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "fleet-rel-"));
}

function gitRepo(files: Record<string, string>): string {
  const dir = tmpdir();
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { stdio: "pipe" });
  git("init", "-q", "-b", "main");
  for (const [f, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), c);
  }
  git("add", "-A");
  git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init");
  return dir;
}

describe("release ids and dependency hashes", () => {
  it("git: the short commit, plus the build's hash when there is a build", () => {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    assert.equal(releaseIdFor(gitReleaseBase(commit)), "0123456789ab");
    assert.match(releaseIdFor(gitReleaseBase(commit), "npm run build"), /^0123456789ab-b[0-9a-f]{6}$/);
    assert.notEqual(releaseIdFor("x", "a"), releaseIdFor("x", "b"));
    assert.throws(() => gitReleaseBase("main"), /not a full commit/);
  });

  it("directory: a content hash that ignores mtimes and order, sees exec bits and content", () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, "a.py"), "print(1)");
    const h1 = treeHash(walkTree(dir, []));
    fs.utimesSync(path.join(dir, "a.py"), new Date(0), new Date(0));
    assert.equal(treeHash(walkTree(dir, [])), h1, "mtime is not content");
    fs.chmodSync(path.join(dir, "a.py"), 0o755);
    assert.notEqual(treeHash(walkTree(dir, [])), h1, "exec bit is content");
    assert.match(pathReleaseBase(h1), /^d-[0-9a-f]{16}$/);
  });

  it("directory: excluded names do not count", () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, "app.js"), "x");
    const h1 = treeHash(walkTree(dir, ["node_modules", "*.log"]));
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.writeFileSync(path.join(dir, "node_modules", "dep.js"), "y");
    fs.writeFileSync(path.join(dir, "debug.log"), "z");
    assert.equal(treeHash(walkTree(dir, ["node_modules", "*.log"])), h1);
  });

  it("deps hash: changes with a lockfile or the install command, not with order", () => {
    const a = { path: "package.json", content: Buffer.from("{}") };
    const b = { path: "package-lock.json", content: Buffer.from("{1}") };
    assert.equal(depsHash([a, b], "npm ci"), depsHash([b, a], "npm ci"));
    assert.notEqual(depsHash([a, b], "npm ci"), depsHash([a, b], "npm install"));
    assert.notEqual(depsHash([a, b], "npm ci"), depsHash([a, { ...b, content: Buffer.from("{2}") }], "npm ci"));
  });

  it("resolveRelease(git): resolves the ref to the commit and hashes when-files from that commit", () => {
    const repo = gitRepo({ "requirements.txt": "flask==3\n", "app.py": "x" });
    const head = execFileSync("git", ["-C", repo, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const r = resolveRelease({ git: repo, ref: "main" }, undefined, "services.t");
    assert.equal(r.commit, head);
    assert.equal(r.releaseId, head.slice(0, 12));
    assert.deepEqual(r.source, { kind: "git", repo, commit: head });
    const h = resolveDepsHash(r, ["requirements.txt"], "pip install -r requirements.txt");
    fs.writeFileSync(path.join(repo, "requirements.txt"), "flask==4\n");
    assert.throws(
      () => resolveRelease({ git: repo }, undefined, "services.t"),
      /services\.t\.source\.git: .* uncommitted changes/,
    );
    const dirtyOk = resolveRelease({ git: repo, allowDirty: true }, undefined, "services.t");
    assert.equal(
      resolveDepsHash(dirtyOk, ["requirements.txt"], "pip install -r requirements.txt"),
      h,
      "hashes the commit, not the working tree",
    );
    assert.throws(
      () => resolveDepsHash(dirtyOk, ["missing.lock"], "x"),
      /services\.t\.install\.when: missing\.lock is not in commit/,
    );
  });

  it("resolveRelease(git, paths): the release is the last commit touching those paths", () => {
    const repo = gitRepo({ "backend/app.py": "1", "frontend/index.js": "1" });
    const git = (...a: string[]) => execFileSync("git", ["-C", repo, ...a], { encoding: "utf8" }).trim();
    const commitFiles = (f: string, c: string) => {
      fs.writeFileSync(path.join(repo, f), c);
      git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", f);
      return git("rev-parse", "HEAD");
    };
    const first = git("rev-parse", "HEAD");
    const backendChange = commitFiles("backend/app.py", "2");
    const back = (ref?: string) =>
      resolveRelease({ git: repo, paths: ["backend"], ...(ref ? { ref } : {}) }, undefined, "services.b");
    const front = () => resolveRelease({ git: repo, paths: ["frontend"] }, undefined, "services.f");
    assert.equal(back().commit, backendChange);
    assert.equal(front().commit, first, "a backend commit leaves the frontend's release alone");
    const frontendChange = commitFiles("frontend/index.js", "2");
    assert.equal(back().commit, backendChange, "and the other way round");
    assert.equal(front().commit, frontendChange);
    assert.equal(back(first).commit, first, "resolved at the ref, not past it");
    assert.throws(
      () => resolveRelease({ git: repo, paths: ["nowhere"] }, undefined, "services.x"),
      /services\.x\.source\.paths: no commit .* touches nowhere/,
    );
  });

  it("resolveRelease: a bad ref and a missing directory are clear errors", () => {
    const repo = gitRepo({ a: "1" });
    assert.throws(() => resolveRelease({ git: repo, ref: "nope" }, undefined, "services.t"), /git rev-parse .* failed/);
    assert.throws(
      () => resolveRelease({ path: "/nonexistent/dir" }, undefined, "services.t"),
      /services\.t\.source\.path: .* is not a directory/,
    );
  });
});
