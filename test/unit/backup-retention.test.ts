import { strict as assert } from "assert";
import { backupsToDelete, newestBackup, newestFirstOrder, type BackupRecord } from "../../decisions/backup-retention";

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse("2026-11-22T12:00:00Z");

/** b(n): a backup taken n days ago, for release r<n>. */
function b(daysAgo: number, releases = [`r${daysAgo}`]): BackupRecord {
  return { id: `db-${daysAgo}`, takenAt: NOW - daysAgo * DAY, releases };
}

describe("decisions/backup-retention", () => {
  const ten = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => b(d));

  it("keep N: deletes all but the N newest", () => {
    assert.deepEqual(backupsToDelete(ten, { keep: 3, now: NOW }), [
      "db-3",
      "db-4",
      "db-5",
      "db-6",
      "db-7",
      "db-8",
      "db-9",
    ]);
  });

  it("keep D days: deletes what is older than D days", () => {
    assert.deepEqual(backupsToDelete(ten, { keepDays: 7, now: NOW }), ["db-7", "db-8", "db-9"]);
  });

  it("keep N and D days: a backup survives if either rule keeps it", () => {
    assert.deepEqual(backupsToDelete(ten, { keep: 2, keepDays: 4, now: NOW }), [
      "db-4",
      "db-5",
      "db-6",
      "db-7",
      "db-8",
      "db-9",
    ]);
    assert.deepEqual(backupsToDelete(ten, { keep: 8, keepDays: 1, now: NOW }), ["db-8", "db-9"]);
  });

  it("never deletes the newest verified backup, even when every rule would", () => {
    const old = [b(30), b(40), b(50)];
    assert.deepEqual(backupsToDelete(old, { keepDays: 7, now: NOW }), ["db-40", "db-50"]);
    assert.deepEqual(backupsToDelete([b(100)], { keepDays: 1, now: NOW }), []);
  });

  it("never deletes a backup taken for a protected (retained) release", () => {
    const list = [b(0), b(1), b(2, ["web-aaaaaa", "api-bbbbbb"]), b(3), b(4, ["web-cccccc"])];
    assert.deepEqual(backupsToDelete(list, { keep: 1, now: NOW, protectReleases: ["api-bbbbbb", "web-cccccc"] }), [
      "db-1",
      "db-3",
    ]);
  });

  it("with no rule set, deletes nothing (an unset policy never loses data)", () => {
    assert.deepEqual(backupsToDelete(ten, { now: NOW }), []);
    assert.deepEqual(backupsToDelete(ten, { keep: 0, keepDays: 0, now: NOW }), []);
  });

  it("orders by time, then id, whatever the input order; same-millisecond ties are stable", () => {
    const shuffled = [b(2), b(0), b(1)];
    assert.deepEqual(
      newestFirstOrder(shuffled).map((x) => x.id),
      ["db-0", "db-1", "db-2"],
    );
    const tie = [
      { id: "a", takenAt: NOW, releases: [] },
      { id: "c", takenAt: NOW, releases: [] },
      { id: "b", takenAt: NOW, releases: [] },
    ];
    assert.equal(newestBackup(tie)?.id, "c");
    assert.deepEqual(backupsToDelete(tie, { keep: 1, now: NOW }), ["b", "a"]);
    assert.equal(newestBackup([]), undefined);
  });

  it("invariants over random inputs: newest and protected survive, keep is honoured, nothing invented", () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 500; round++) {
      const n = rand(12);
      const list: BackupRecord[] = Array.from({ length: n }, (_, i) => ({
        id: `x-${i}`,
        takenAt: NOW - rand(60) * DAY - rand(1000),
        releases: rand(3) === 0 ? [] : [`r${rand(6)}`],
      }));
      const keep = rand(5);
      const keepDays = rand(3) === 0 ? 0 : rand(30);
      const protectReleases = rand(2) ? [`r${rand(6)}`] : [];
      const doomed = backupsToDelete(list, { keep, keepDays, now: NOW, protectReleases });
      const ids = new Set(list.map((x) => x.id));
      assert.ok(
        doomed.every((id) => ids.has(id)),
        "only existing backups",
      );
      assert.equal(new Set(doomed).size, doomed.length, "no duplicates");
      if (n > 0) assert.ok(!doomed.includes(newestBackup(list)!.id), "newest kept");
      for (const x of list) {
        if (x.releases.some((r) => protectReleases.includes(r))) assert.ok(!doomed.includes(x.id), "protected kept");
        if (keepDays > 0 && NOW - x.takenAt < keepDays * DAY) assert.ok(!doomed.includes(x.id), "young kept");
      }
      if (keep > 0 || keepDays > 0) assert.ok(n - doomed.length >= Math.min(keep, n), "at least keep kept");
      else assert.deepEqual(doomed, []);
    }
  });
});
