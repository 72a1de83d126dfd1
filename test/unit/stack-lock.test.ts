import { strict as assert } from "assert";
import { judgeStackLock, parseStackLock } from "../../decisions/stack-lock";

describe("decisions/stack-lock: a file backend's stack lock left by a killed pulumi", () => {
  const owner = { pid: 4242, username: "root", hostname: "laptop", timestamp: "2026-12-01T23:00:00Z" };

  it("is stale only when its holder ran here and is gone", () => {
    const gone = judgeStackLock(owner, { hostname: "laptop", alive: () => false });
    assert.equal(gone.kind, "stale");
    assert.match(gone.why, /root@laptop \(pid 4242, since 2026-12-01T23:00:00Z\) is gone/);
  });

  it("an alive holder, or one on another machine, keeps it", () => {
    assert.equal(judgeStackLock(owner, { hostname: "laptop", alive: (pid) => pid === 4242 }).kind, "held");
    const elsewhere = judgeStackLock(owner, { hostname: "ci-runner", alive: () => false });
    assert.equal(elsewhere.kind, "held");
    assert.match(elsewhere.why, /from another machine/);
  });

  it("reads the CLI's lock content, and nothing else", () => {
    assert.deepEqual(parseStackLock(JSON.stringify(owner)), owner);
    assert.equal(parseStackLock("not json"), undefined);
    assert.equal(parseStackLock(JSON.stringify({ pid: "1", hostname: "x" })), undefined);
  });
});
