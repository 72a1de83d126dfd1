import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { FAULT_RESULTS_COMMITTED, FAULT_RESULTS_EVIDENCE, publishFaultResults } from "../faults/support/results-file";

const ROOT = path.resolve(__dirname, "..", "..");
const git = (...args: string[]) => spawnSync("git", ["-C", ROOT, ...args], { encoding: "utf8" });

const MATRIX = (cells: string[]) =>
  ["# Fault matrix", "", "Cells: 2 pass, 0 fail, 0 n/a (of 2).", "", "## Cells", "", ...cells, ""].join("\n");

describe("fault matrix results: evidence in an ignored folder, the committed copy refreshed on purpose", () => {
  let dir = "";
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-results-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a run writes its evidence where git ignores it, not over the committed copy", () => {
    assert.notEqual(FAULT_RESULTS_EVIDENCE, FAULT_RESULTS_COMMITTED);
    const ignored = git("check-ignore", "-q", "--no-index", FAULT_RESULTS_EVIDENCE);
    assert.equal(ignored.status, 0, `${path.relative(ROOT, FAULT_RESULTS_EVIDENCE)} is git-ignored`);
    const tracked = git("ls-files", "--error-unmatch", FAULT_RESULTS_COMMITTED);
    assert.equal(tracked.status, 0, `${path.relative(ROOT, FAULT_RESULTS_COMMITTED)} is committed`);
  });

  it("npm run faults:results copies the latest evidence over the committed copy", () => {
    const from = path.join(dir, "evidence.md");
    const to = path.join(dir, "committed.md");
    fs.writeFileSync(from, MATRIX(["### upload × ssh drop: pass", "", "### upload × hung: n/a"]));
    fs.writeFileSync(to, "old\n");
    assert.match(publishFaultResults(from, to), /Cells: 2 pass, 0 fail, 0 n\/a/);
    assert.equal(fs.readFileSync(to, "utf8"), fs.readFileSync(from, "utf8"));
    const scripts = (
      JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    assert.equal(scripts["faults:results"], "tsx test/faults/support/results-file.ts");
  });

  it("refuses when there is no evidence yet, saying which run makes it", () => {
    const to = path.join(dir, "committed.md");
    fs.writeFileSync(to, "old\n");
    assert.throws(
      () => publishFaultResults(path.join(dir, "none.md"), to),
      /no evidence yet\. Run `npm run test:faults`/,
    );
    assert.equal(fs.readFileSync(to, "utf8"), "old\n");
  });

  it("refuses a partial matrix (cells not run) and leaves the committed copy as it was", () => {
    const from = path.join(dir, "evidence.md");
    const to = path.join(dir, "committed.md");
    fs.writeFileSync(from, MATRIX(["### upload × ssh drop: pass", "", "### upload × hung: not run"]));
    fs.writeFileSync(to, "old\n");
    assert.throws(() => publishFaultResults(from, to), /1 cell\(s\) "not run".*committed\.md is unchanged/);
    assert.equal(fs.readFileSync(to, "utf8"), "old\n");
  });
});
