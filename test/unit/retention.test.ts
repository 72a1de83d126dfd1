import { strict as assert } from "assert";
import { parseReleaseLines, releasesToDelete } from "../../decisions/retention";

const rel = (id: string, activatedAt: number) => ({ id, activatedAt });

describe("decisions/retention", () => {
  it("keeps the newest N by activation and deletes the rest", () => {
    const releases = [rel("a", 1), rel("b", 2), rel("c", 3), rel("d", 4), rel("e", 5)];
    assert.deepEqual(releasesToDelete(releases, { keep: 3, current: "e", previous: "d" }).sort(), ["a", "b"]);
  });

  it("never deletes the serving release or the rollback target, however old", () => {
    const releases = [rel("old-current", 1), rel("old-previous", 2), rel("x", 3), rel("y", 4), rel("z", 5)];
    const deleted = releasesToDelete(releases, { keep: 2, current: "old-current", previous: "old-previous" });
    assert.deepEqual(deleted.sort(), ["x"]);
  });

  it("deletes failed releases (activatedAt 0) first", () => {
    const releases = [rel("failed", 0), rel("a", 10), rel("b", 20)];
    assert.deepEqual(releasesToDelete(releases, { keep: 2, current: "b", previous: "a" }), ["failed"]);
  });

  it("keeps at least the serving release even with keep < 1", () => {
    assert.deepEqual(releasesToDelete([rel("a", 1)], { keep: 0, current: "a" }), []);
  });

  it("parses the prepare step's release lines", () => {
    assert.deepEqual(parseReleaseLines(["abc 123 deps1", "def 0 -", ""]), [rel("abc", 123), rel("def", 0)]);
  });
});
