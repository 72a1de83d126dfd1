import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { packKey, sharedPack, type PackedSource } from "../../source/pack";
import type { ResolvedSource } from "../../model/service";

async function filesIn(packed: PackedSource): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const c of packed.stream as AsyncIterable<Buffer>) chunks.push(c);
  await packed.done;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-unpack-"));
  execFileSync("tar", ["-xzf", "-", "-C", dir], { input: Buffer.concat(chunks) });
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir)) out[f] = fs.readFileSync(path.join(dir, f), "utf8");
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

/** source/pack.ts: a release is packed once per provider host and shared by every server. */
describe("shared release packing", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-pack-"));
  const source: ResolvedSource = { kind: "path", path: dir, exclude: [] };
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("the same release is packed once: later servers get the first pack's bytes", async () => {
    fs.writeFileSync(path.join(dir, "a.txt"), "one");
    const first = await filesIn(await sharedPack(source, "rel-aaaaaa"));
    // Changed on disk without a new release id: a second pack would see "two".
    fs.writeFileSync(path.join(dir, "a.txt"), "two");
    const second = await filesIn(await sharedPack(source, "rel-aaaaaa"));
    assert.deepEqual(first, { "a.txt": "one" });
    assert.deepEqual(second, first);
  });

  it("another release id is packed afresh", async () => {
    assert.deepEqual(await filesIn(await sharedPack(source, "rel-bbbbbb")), { "a.txt": "two" });
  });

  it("concurrent servers share one pack in flight", async () => {
    fs.writeFileSync(path.join(dir, "a.txt"), "three");
    const packs = await Promise.all([1, 2, 3].map(() => sharedPack(source, "rel-cccccc")));
    for (const p of packs) assert.deepEqual(await filesIn(p), { "a.txt": "three" });
  });

  it("a failed pack is not kept: the next attempt packs again", async () => {
    const missing = path.join(dir, "later");
    const src: ResolvedSource = { kind: "path", path: missing, exclude: [] };
    await assert.rejects(async () => filesIn(await sharedPack(src, "rel-dddddd")), /packing the release failed/);
    fs.mkdirSync(missing);
    fs.writeFileSync(path.join(missing, "b.txt"), "ok");
    assert.deepEqual(await filesIn(await sharedPack(src, "rel-dddddd")), { "b.txt": "ok" });
  });

  it("keys name the exact release: commit for git, content hash for a directory", () => {
    assert.notEqual(
      packKey({ kind: "git", repo: "/r", commit: "a".repeat(40) } as ResolvedSource, "x"),
      packKey({ kind: "git", repo: "/r", commit: "b".repeat(40) } as ResolvedSource, "x"),
    );
    assert.notEqual(packKey(source, "rel-1"), packKey(source, "rel-2"));
  });
});
