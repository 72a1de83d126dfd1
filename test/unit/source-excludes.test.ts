import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { treeHash } from "../../decisions/release-id";
import { excludeMatcher, releaseFiles } from "../../source/files";
import { packSource, type PackedSource } from "../../source/pack";
import { resolveRelease, walkTree } from "../../source/resolve";
import { isConfigInvalid, parseFleetConfig } from "../../config/schema";

function tmpdir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes `files` (relative path → content) below `dir`. */
function writeTree(dir: string, files: Record<string, string>): void {
  for (const [f, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), content);
  }
}

/** Unpacks a packed release into a fresh directory, as the host does. */
async function unpack(packed: PackedSource): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of packed.stream as AsyncIterable<Buffer>) chunks.push(c);
  await packed.done;
  const dir = tmpdir("fleet-unpacked-");
  execFileSync("tar", ["-xzf", "-", "-C", dir], { input: Buffer.concat(chunks) });
  return dir;
}

/** source/: a path source's release id and its pack come from the same file list. */
describe("path sources: the hashed files are the packed files", () => {
  const dirs: string[] = [];
  const fresh = (prefix: string) => {
    const d = tmpdir(prefix);
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("a write to an excluded file (data/*.db) leaves the release id alone; a kept file changes it", () => {
    const dir = fresh("fleet-src-");
    writeTree(dir, { "app.py": "print(1)", "data/app.db": "rows 1", "data/schema.sql": "create" });
    const id = () => resolveRelease({ path: dir, exclude: ["data/*.db"] }, undefined, "services.t").releaseId;
    const before = id();
    fs.writeFileSync(path.join(dir, "data", "app.db"), "rows 2");
    fs.writeFileSync(path.join(dir, "data", "new.db"), "another database");
    assert.equal(id(), before, "database writes are not a new release");
    fs.writeFileSync(path.join(dir, "data", "schema.sql"), "create table");
    assert.notEqual(id(), before, "data/schema.sql is not excluded");
  });

  it("the unpacked release holds exactly the hashed files, with the release's hash", async () => {
    const dir = fresh("fleet-src-");
    writeTree(dir, {
      "app.py": "print(1)",
      ".env.example": "PORT=1",
      "data/app.db": "rows",
      "data/keep.txt": "kept",
      "data/sub/deep.db": "not matched: * stops at /",
      "lib/data/other.db": "not matched: data/*.db is anchored",
      "logs/a/b/old.gz": "x",
      "logs/top.gz": "x",
      "logs/readme": "kept",
      "src/debug.log": "x",
      "build/tmp/a": "x",
      "build/out.js": "kept",
      "node_modules/dep/index.js": "x",
      "web/node_modules/dep/index.js": "x",
      "-rf": "a name that looks like an option",
      "sp ace/\\back*slash?": "names are not patterns",
      "new\nline": "a newline is a character of a name",
    });
    fs.symlinkSync("data", path.join(dir, "data-link"));
    fs.symlinkSync("/etc/passwd", path.join(dir, "outside"));
    fs.chmodSync(path.join(dir, "app.py"), 0o755);
    const exclude = ["data/*.db", "logs/**/*.gz", "*.log", "build/tmp"];
    const release = resolveRelease({ path: dir, exclude }, undefined, "services.t");
    assert.equal(release.source.kind, "path");
    const hashed = walkTree(dir, release.source.kind === "path" ? release.source.exclude : []);
    const unpacked = await unpack(packSource(release.source));
    dirs.push(unpacked);
    const packed = walkTree(unpacked, []);
    assert.deepEqual(
      packed.map((e) => e.path),
      hashed.map((e) => e.path),
    );
    assert.equal(treeHash(packed), treeHash(hashed));
    assert.deepEqual(
      hashed.map((e) => e.path),
      [
        "-rf",
        ".env.example",
        "app.py",
        "build/out.js",
        "data-link",
        "data/keep.txt",
        "data/sub/deep.db",
        "lib/data/other.db",
        "logs/readme",
        "new\nline",
        "outside",
        "sp ace/\\back*slash?",
      ],
    );
  });
});

/** source/files.ts: the meaning of exclude patterns (gitignore-like), one case per rule. */
describe("exclude patterns", () => {
  const dir = tmpdir("fleet-excl-");
  writeTree(dir, {
    "app.js": "",
    ".env": "",
    ".env.local": "",
    ".github/workflows/ci.yml": "",
    "node_modules/a/index.js": "",
    "web/node_modules/b/index.js": "",
    "web/src/index.js": "",
    "web/dist/bundle.js": "",
    "dist/bundle.js": "",
    "data/app.db": "",
    "data/app.db-wal": "",
    "data/schema.sql": "",
    "data/sub/x.db": "",
    "lib/data/y.db": "",
    "cache/blob": "",
    "src/cache": "a file named cache",
    "logs/app.log": "",
    "logs/2024/01/a.gz": "",
    "logs/a.gz": "",
    "keep.gz": "",
    "UPPER.DB": "",
  });
  fs.symlinkSync("../cache", path.join(dir, "web", "cache"));
  fs.symlinkSync("data", path.join(dir, "alias"));
  fs.mkdirSync(path.join(dir, "empty"));
  execFileSync("mkfifo", [path.join(dir, "fifo")]);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const all = releaseFiles(dir, []);
  /** What `patterns` leave out of the release. */
  const leftOut = (...patterns: string[]) => {
    const kept = new Set(releaseFiles(dir, patterns));
    return all.filter((f) => !kept.has(f));
  };

  it("without patterns: every file and symlink, sorted; symlinks not followed; no directories or FIFOs", () => {
    assert.deepEqual(all, [...all].sort());
    assert.ok(all.includes("alias") && all.includes("web/cache"), "symlinks are entries");
    assert.ok(!all.some((f) => f.startsWith("alias/")), "a symlink to a directory is not followed");
    assert.ok(!all.includes("empty") && !all.includes("fifo") && !all.includes("data"));
    assert.ok(all.includes(".env") && all.includes(".github/workflows/ci.yml"), "dotfiles are files like others");
  });

  it("a pattern without a slash matches a name at any depth", () => {
    assert.deepEqual(leftOut("node_modules"), ["node_modules/a/index.js", "web/node_modules/b/index.js"]);
    assert.deepEqual(leftOut("*.db"), ["data/app.db", "data/sub/x.db", "lib/data/y.db"]);
    assert.deepEqual(leftOut("*.DB"), ["UPPER.DB"], "case-sensitive");
  });

  it("a pattern with a slash is anchored at the directory, and * stops at /", () => {
    assert.deepEqual(leftOut("data/*.db"), ["data/app.db"]);
    assert.deepEqual(leftOut("./dist"), ["dist/bundle.js"], "./ anchors a single name: web/dist stays");
    assert.deepEqual(leftOut("dist"), ["dist/bundle.js", "web/dist/bundle.js"]);
    assert.deepEqual(leftOut("web/src/index.js"), ["web/src/index.js"]);
  });

  it("** spans any number of directories, none included", () => {
    assert.deepEqual(leftOut("**/data/*.db"), ["data/app.db", "lib/data/y.db"]);
    assert.deepEqual(leftOut("data/**/*.db"), ["data/app.db", "data/sub/x.db"]);
    assert.deepEqual(leftOut("logs/**/*.gz"), ["logs/2024/01/a.gz", "logs/a.gz"]);
    assert.deepEqual(leftOut("logs/**"), ["logs/2024/01/a.gz", "logs/a.gz", "logs/app.log"]);
    assert.deepEqual(leftOut("src/cache/**"), [], "what is below src/cache: none, src/cache is a file and stays");
  });

  it("a matching directory is left out with everything below it; a trailing / matches directories only", () => {
    assert.deepEqual(leftOut("./data"), ["data/app.db", "data/app.db-wal", "data/schema.sql", "data/sub/x.db"]);
    assert.deepEqual(leftOut("data"), [...leftOut("./data"), "lib/data/y.db"], "a name, at any depth");
    assert.deepEqual(leftOut("data/"), leftOut("data"));
    assert.deepEqual(leftOut("cache/"), ["cache/blob"], "not the file src/cache, nor the symlink web/cache");
    assert.deepEqual(leftOut("cache"), ["cache/blob", "src/cache", "web/cache"]);
    assert.deepEqual(leftOut("alias/"), [], "a symlink to a directory is not a directory");
    assert.deepEqual(leftOut("alias"), ["alias"]);
  });

  it("wildcards match dotfiles", () => {
    assert.deepEqual(leftOut("*.local"), [".env.local"]);
    assert.deepEqual(leftOut(".*"), [".env", ".env.local", ".github/workflows/ci.yml"]);
    assert.deepEqual(leftOut("*"), all);
  });

  it("brackets, escapes; braces and extglobs are literal", () => {
    assert.deepEqual(leftOut("[a-b]pp.js"), ["app.js"]);
    assert.deepEqual(leftOut("keep.[!g]z"), []);
    assert.deepEqual(leftOut("keep.[!x]z"), ["keep.gz"]);
    assert.deepEqual(leftOut("*.{db,gz}"), []);
    assert.deepEqual(leftOut("@(app).js"), []);
    assert.deepEqual(excludeMatcher(["a\\*b"])("a*b", false), true);
    assert.deepEqual(excludeMatcher(["a\\*b"])("axb", false), false);
  });

  it("resolveRelease leaves out .git and node_modules by default", () => {
    const src = tmpdir("fleet-src-");
    writeTree(src, { "app.js": "1", ".git/HEAD": "ref", "web/node_modules/x.js": "" });
    const r = resolveRelease({ path: src }, undefined, "services.t");
    assert.ok(r.source.kind === "path");
    assert.deepEqual(releaseFiles(src, r.source.exclude), ["app.js"]);
    fs.rmSync(src, { recursive: true, force: true });
  });

  it("a pattern outside the directory, or a negation, is refused with the field that holds it", () => {
    for (const [pattern, problem] of [
      ["/srv/app/data/*.db", /must be relative to the source directory/],
      ["../secrets", /must stay inside the source directory/],
      ["data/../../x", /must stay inside the source directory/],
      ["data//x.db", /must stay inside the source directory/],
      ["!keep.db", /negation \(!\) is not supported/],
      ["", /must not be empty/],
    ] as const) {
      assert.throws(
        () => resolveRelease({ path: dir, exclude: ["*.log", pattern] }, undefined, "services.t"),
        (e: Error) => e.message.startsWith("services.t.source.exclude.1: ") && problem.test(e.message),
        pattern,
      );
      assert.throws(() => excludeMatcher([pattern]), problem, pattern);
    }
  });
});

describe("config: exclude patterns are checked by the matcher's rule", () => {
  const config = (serviceExclude: string[], imageExclude: string[]) => ({
    hosts: { web1: { address: "127.0.0.11", privateKeyFile: "/k", hostKey: "ssh-ed25519 AAAA" } },
    images: {
      app: { kind: "docker", context: "./app", exclude: imageExclude, validate: { url: "http://127.0.0.1:1/" } },
    },
    services: {
      web: {
        host: "web1",
        source: { path: "./app", exclude: serviceExclude },
        start: "x",
        health: { url: "http://127.0.0.1:8080/health" },
      },
    },
  });
  const problems = (raw: unknown): string[] => {
    try {
      parseFleetConfig(raw);
      return [];
    } catch (err) {
      assert.ok(isConfigInvalid(err), String(err));
      return [...err.problems];
    }
  };

  it("accepts the documented forms", () => {
    const good = ["data/*.db", "./build", "node_modules/", "**/cache", "logs/**/*.gz", ".env", "data/**"];
    assert.deepEqual(problems(config(good, good)), []);
  });

  it("refuses absolute paths, '..' and negation, naming the field", () => {
    assert.deepEqual(problems(config(["*.log", "/abs/x"], ["../up"])).sort(), [
      "images.app.exclude.0: must stay inside the source directory: no '..', '.' or empty parts (a leading ./ is fine)",
      "services.web.source.exclude.1: must be relative to the source directory (data/*.db, not /srv/app/data/*.db; ./build for the top-level build only)",
    ]);
    assert.match(problems(config(["!x"], []))[0]!, /^services\.web\.source\.exclude\.0: negation/);
  });
});
