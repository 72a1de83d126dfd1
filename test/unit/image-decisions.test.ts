import { strict as assert } from "assert";
import { changedFiles, countChanges, describeChanges } from "../../decisions/image-changes";
import { imageContentHash, manifestOf, shortHash, type ImageInputs } from "../../decisions/image-hash";
import { imagesToDelete, nextHistory } from "../../decisions/image-retention";
import type { TreeEntry } from "../../decisions/release-id";

const file = (p: string, content: string, executable = false): TreeEntry => ({
  path: p,
  kind: "file",
  executable,
  content: Buffer.from(content),
});

const inputs = (over: Partial<ImageInputs> = {}): ImageInputs => ({
  kind: "docker",
  manifest: manifestOf([file("Dockerfile", "FROM scratch\n"), file("app/main.py", "print(1)\n")]),
  buildArgs: {},
  settings: { dockerfile: "Dockerfile" },
  ...over,
});

describe("decisions/image-hash", () => {
  it("a manifest records kind and content per path, whatever the walk order", () => {
    const a = manifestOf([file("b.sh", "x", true), file("a.txt", "y"), { ...file("l", "a.txt"), kind: "symlink" }]);
    const b = manifestOf([{ ...file("l", "a.txt"), kind: "symlink" }, file("a.txt", "y"), file("b.sh", "x", true)]);
    assert.deepEqual(a, b);
    assert.deepEqual(Object.keys(a), ["a.txt", "b.sh", "l"]);
    assert.match(a["a.txt"]!, /^f:[0-9a-f]{64}$/);
    assert.match(a["b.sh"]!, /^x:/);
    assert.match(a["l"]!, /^l:/);
  });

  it("the content hash is stable, and changes with any byte, exec bit, path, build arg or setting", () => {
    const base = imageContentHash(inputs());
    assert.equal(imageContentHash(inputs()), base);
    assert.match(base, /^[0-9a-f]{64}$/);
    const variants = [
      inputs({ manifest: manifestOf([file("Dockerfile", "FROM scratch\n"), file("app/main.py", "print(2)\n")]) }),
      inputs({ manifest: manifestOf([file("Dockerfile", "FROM scratch\n"), file("app/main.py", "print(1)\n", true)]) }),
      inputs({ manifest: manifestOf([file("Dockerfile", "FROM scratch\n"), file("app/Main.py", "print(1)\n")]) }),
      inputs({ buildArgs: { VERSION: "1" } }),
      inputs({ settings: { dockerfile: "Dockerfile.prod" } }),
      inputs({ kind: "hcloud" }),
    ];
    const hashes = variants.map(imageContentHash);
    assert.equal(new Set([base, ...hashes]).size, variants.length + 1, "every variant hashes differently");
  });

  it("keys and values cannot be shifted between build args (length-prefixed encoding)", () => {
    const a = imageContentHash(inputs({ buildArgs: { A: "1\0B", C: "2" } }));
    const b = imageContentHash(inputs({ buildArgs: { A: "1", "B\0C": "2" } }));
    assert.notEqual(a, b);
  });

  it("the short hash is the first 16 characters", () => {
    assert.equal(shortHash("0123456789abcdef0123"), "0123456789abcdef");
  });
});

describe("decisions/image-changes", () => {
  const before = { "a.txt": "f:1", "b.txt": "f:2", "run.sh": "f:3" };
  const after = { "a.txt": "f:1", "b.txt": "f:9", "run.sh": "x:3", "new/c.txt": "f:4" };

  it("names the added, removed and modified files (an exec bit counts as a change)", () => {
    const c = changedFiles(before, after);
    assert.deepEqual(c, { added: ["new/c.txt"], removed: [], modified: ["b.txt", "run.sh"] });
    assert.deepEqual(changedFiles(after, before).removed, ["new/c.txt"]);
    assert.equal(countChanges(changedFiles(before, before)), 0);
  });

  it("everything is added when there was no manifest", () => {
    assert.deepEqual(changedFiles(undefined, before).added, ["a.txt", "b.txt", "run.sh"]);
  });

  it("describes the change in one line, capped, and says when no file changed", () => {
    assert.equal(describeChanges(changedFiles(before, after)), "3 files changed: +new/c.txt ~b.txt ~run.sh");
    assert.equal(describeChanges(changedFiles(before, after), 1), "3 files changed: +new/c.txt … and 2 more");
    assert.equal(describeChanges(changedFiles({}, { x: "f:1" })), "1 file changed: +x");
    assert.equal(describeChanges(changedFiles(before, before)), "no file changed (build args or settings did)");
  });
});

describe("decisions/image-retention", () => {
  it("the history puts the activated image first, without duplicates, trimmed to keep", () => {
    assert.deepEqual(nextHistory(["b", "a"], "c", 3), ["c", "b", "a"]);
    assert.deepEqual(nextHistory(["c", "b", "a"], "d", 3), ["d", "c", "b"]);
    assert.deepEqual(nextHistory(["b", "a"], "a", 3), ["a", "b"], "re-activating an old image moves it up");
    assert.deepEqual(
      nextHistory(["b", "a"], "c", 1),
      ["c", "b"],
      "never fewer than the active one and the rollback target",
    );
  });

  it("keeps the newest activations and deletes the rest, failed builds included", () => {
    const present = ["a", "b", "c", "failed"];
    assert.deepEqual(imagesToDelete(present, { keep: 2, history: ["c", "b", "a"], protect: [] }), ["a", "failed"]);
  });

  it("never deletes a protected image (in use, named by a unit, or the caller's), whatever its age", () => {
    const present = ["a", "b", "c", "d"];
    assert.deepEqual(imagesToDelete(present, { keep: 2, history: ["d", "c", "b", "a"], protect: ["a"] }), ["b"]);
  });

  it("keeps the active image and the rollback target even with keep below 2", () => {
    assert.deepEqual(imagesToDelete(["a", "b", "c"], { keep: 1, history: ["c", "b", "a"], protect: [] }), ["a"]);
  });

  it("with no history (a destroy) deletes everything not protected", () => {
    assert.deepEqual(imagesToDelete(["a", "b", "a"], { keep: 3, history: [], protect: ["b"] }), ["a"]);
  });
});
