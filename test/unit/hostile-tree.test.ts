import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import fc from "fast-check";
import {
  deleteScript,
  finalizeScript,
  layoutOf,
  linkDepsScript,
  readScript,
  rollbackScript,
} from "../../commands/service";
import { header } from "../../commands/service-shell";
import { shq } from "../../commands/quote";
import { parseFacts } from "../../commands/facts";
import { localServiceSpec, runLocalScript } from "../support/local-sh";

/**
 * Issue 29: the service's user owns its release trees and deps, so anything in them may be a
 * hostile name or a link out of the tree. fleet's steps that touch those trees (re-linking a
 * deps set, reading the release marks, pruning, deleting) run here with the local /bin/sh over
 * generated hostile trees, and nothing outside the service's folder may change.
 */

/** Path segments a hostile user would pick: spaces, globs, newlines, leading dashes, dots. */
const SEGMENTS = [
  " ",
  "a b",
  "*",
  "?",
  "[x]",
  "-rf",
  "--",
  "\n",
  "a\nb",
  ".hidden",
  "..x",
  "$(id)",
  "`id`",
  "'",
  '"',
  "x",
];

interface Plant {
  /** Under the release or the deps set. */
  readonly where: "release" | "deps";
  /** Relative path, each segment hostile. */
  readonly segments: readonly string[];
  /** A link to somewhere outside (a victim, the victims' folder, or a name in the deps tree) or a plain file. */
  readonly kind: "file" | "victim-link" | "dir-link" | "deps-link";
}

const plantArb: fc.Arbitrary<Plant> = fc.record({
  where: fc.constantFrom("release" as const, "deps" as const),
  segments: fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 3 }),
  kind: fc.constantFrom("file" as const, "victim-link" as const, "dir-link" as const, "deps-link" as const),
});

/** Names, types, modes and contents of everything under `dir` (links as their targets). */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    const rel = path.relative(dir, p);
    if (st.isSymbolicLink()) out.push(`${JSON.stringify(rel)} -> ${fs.readlinkSync(p)}`);
    else if (st.isDirectory()) {
      out.push(`${JSON.stringify(rel)}/ ${st.mode.toString(8)}`);
      for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    } else out.push(`${JSON.stringify(rel)} ${st.mode.toString(8)} ${fs.readFileSync(p, "base64")}`);
  };
  walk(dir);
  return out.join("\n");
}

describe("hostile names and links in the service user's trees (issue 29, property)", () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-hostile-"));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("re-linking deps, listing, pruning and deleting change nothing outside the service's folder", () => {
    let run = 0;
    fc.assert(
      fc.property(fc.array(plantArb, { minLength: 1, maxLength: 8 }), (plants) => {
        const base = path.join(tmp, `run${run++}`);
        const outside = path.join(base, "outside");
        fs.mkdirSync(path.join(outside, "dir"), { recursive: true });
        fs.writeFileSync(path.join(outside, "victim"), "root-only\n", { mode: 0o600 });
        fs.writeFileSync(path.join(outside, "dir", "x"), "keep\n");
        // Names that the word-split of a hostile path would produce, outside the tree.
        for (const s of SEGMENTS.filter((x) => !x.includes("/") && x !== "." && x !== ".."))
          fs.writeFileSync(path.join(outside, "dir", s.replace(/\n/g, "_") || "_"), "keep\n");
        const root = path.join(base, "root");
        const spec = localServiceSpec(root, `fleet-hostile-${process.pid}`, {
          install: { run: "true", when: [], hash: "newdeps" } as never,
        });
        const layout = layoutOf(spec);
        const rel = path.join(layout.releases, "r1");
        const deps = path.join(layout.deps, "olddeps");
        fs.mkdirSync(rel, { recursive: true });
        fs.mkdirSync(path.join(layout.deps, "newdeps", "lib"), { recursive: true });
        fs.mkdirSync(deps, { recursive: true });
        fs.symlinkSync(path.join(deps, "lib"), path.join(rel, "lib"));
        for (const p of plants) {
          const top = p.where === "release" ? rel : deps;
          const target = path.join(top, ...p.segments);
          try {
            fs.mkdirSync(path.dirname(target), { recursive: true });
          } catch {
            continue; // an earlier plant is a file or link where this one needs a folder
          }
          if (fs.existsSync(target) || isLink(target)) continue;
          if (p.kind === "file") fs.writeFileSync(target, "x");
          else if (p.kind === "victim-link") fs.symlinkSync(path.join(outside, "victim"), target);
          else if (p.kind === "dir-link") fs.symlinkSync(path.join(outside, "dir"), target);
          else fs.symlinkSync(path.join(deps, ...p.segments), target);
        }
        // The user's legacy markers, all links out of the tree.
        for (const m of [".fleet-staged", ".fleet-activated", ".fleet-deps", "REVISION"])
          if (!fs.existsSync(path.join(rel, m)) && !isLink(path.join(rel, m)))
            fs.symlinkSync(path.join(outside, "victim"), path.join(rel, m));
        const before = snapshot(outside);

        const d = shq(layout.dir);
        const steps = [
          // A kept release re-activated with another deps set.
          header(layout, spec.runAs) + `as_user ${shq(linkDepsScript(layout, rel, "newdeps", true))}\n`,
          readScript(spec),
          `mkdir ${d}/.lock && printf 'token=t1\\n' > ${d}/.lock/owner\n`,
          finalizeScript(spec, {
            deleteReleases: ["r1"],
            audit: { who: "t", from: "", to: "r1", result: "ok" },
            elapsedBeforeMs: 0,
            token: "t1",
          }),
          deleteScript(spec),
        ];
        for (const script of steps) {
          const r = runLocalScript(script, base, { stubSystemctl: true });
          assert.equal(r.code, 0, `${r.stderr}\n${script.slice(-400)}`);
          assert.doesNotMatch(r.stdout, /root-only/, "a victim's content never reaches the output");
        }
        assert.equal(snapshot(outside), before, JSON.stringify(plants));
        assert.ok(!fs.existsSync(layout.dir), "the service's folder is gone");
      }),
      { numRuns: 40 },
    );
  });
});

describe("release marks: fleet's own facts about a release are root's (issue 29)", () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-marks-"));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const layoutAt = () => layoutOf(localServiceSpec(path.join(tmp, "root"), "fleet-marks"));
  const sh = (body: string) =>
    runLocalScript(header(layoutAt(), os.userInfo().username) + body + "\n", tmp, { stubSystemctl: true });

  it("reads a legacy marker only from a regular file: never through a link, never blocking on a FIFO", () => {
    const layout = layoutAt();
    const rel = path.join(layout.releases, "r1");
    fs.mkdirSync(rel, { recursive: true });
    const victim = path.join(tmp, "victim");
    fs.writeFileSync(victim, "secret\n");
    fs.symlinkSync(victim, path.join(rel, "REVISION"));
    execFileSync("mkfifo", [path.join(rel, ".fleet-deps")]);
    fs.writeFileSync(path.join(rel, ".fleet-activated"), "1700000000000\n");
    const r = sh(
      `echo "commit=$(mark_get r1 commit)"; echo "deps=$(mark_get r1 deps)"; echo "activated=$(mark_get r1 activated)"`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseFacts(r.stdout).one, { commit: "", deps: "", activated: "1700000000000" });
  });

  it("writes only under .marks/: a link the user left in the release is never written through", () => {
    const layout = layoutAt();
    const rel = path.join(layout.releases, "r1");
    fs.mkdirSync(rel, { recursive: true });
    const victim = path.join(tmp, "victim");
    fs.writeFileSync(victim, "secret\n");
    for (const m of [".fleet-staged", ".fleet-activated"]) fs.symlinkSync(victim, path.join(rel, m));
    fs.writeFileSync(path.join(rel, ".fleet-deps"), "h1\n");
    const r = sh(
      `mark_set r1 activated 42; mark_set r1 staged 1; mark_clear r1 staged; echo "deps=$(mark_get r1 deps)"`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(victim, "utf8"), "secret\n");
    assert.equal(fs.readFileSync(path.join(layout.dir, ".marks", "r1", "activated"), "utf8"), "42\n");
    assert.ok(!fs.existsSync(path.join(layout.dir, ".marks", "r1", "staged")));
    assert.equal(parseFacts(r.stdout).one["deps"], "h1", "a regular legacy marker is imported");
  });
});

describe("a rollback acts only while the lock is still its deploy's (issue 29)", () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-rollback-lock-"));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("a lock another deploy took over: exit lockLost, current, env and the saved state untouched", () => {
    const spec = localServiceSpec(path.join(tmp, "root"), "fleet-rollback-lock");
    const d = layoutOf(spec).dir;
    fs.mkdirSync(path.join(d, ".rollback"), { recursive: true });
    fs.mkdirSync(path.join(d, "releases", "a0"), { recursive: true });
    fs.mkdirSync(path.join(d, "releases", "b1"), { recursive: true });
    fs.writeFileSync(path.join(d, ".rollback", "current"), "releases/a0");
    fs.writeFileSync(path.join(d, ".rollback", "saved"), "");
    fs.symlinkSync("releases/b1", path.join(d, "current"));
    fs.mkdirSync(path.join(d, ".lock"));
    fs.writeFileSync(path.join(d, ".lock", "owner"), "who=b\ntoken=deploy-b\n");
    const r = runLocalScript(rollbackScript(spec, "deploy-a"), tmp, { stubSystemctl: true });
    assert.equal(r.code, 76, r.stderr);
    assert.equal(parseFacts(r.stdout).one["lock_lost"], "1");
    assert.equal(fs.readlinkSync(path.join(d, "current")), "releases/b1", "B's release still serves");
    assert.ok(fs.existsSync(path.join(d, ".rollback", "saved")));
    assert.ok(!fs.existsSync(path.join(d, ".lock", "decided")), "A claimed no decision of B's");
  });
});

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
