import { strict as assert } from "assert";
import { planBatches } from "../../decisions/rollout";

describe("decisions/rollout", () => {
  const hosts = ["a", "b", "c", "d", "e"];
  it("one host at a time by default order", () => {
    assert.deepEqual(planBatches(hosts, { batch: 1, canary: [] }), [["a"], ["b"], ["c"], ["d"], ["e"]]);
  });
  it("canaries first, as their own batch, then the rest in batches", () => {
    assert.deepEqual(planBatches(hosts, { batch: 2, canary: ["c"] }), [["c"], ["a", "b"], ["d", "e"]]);
  });
  it("a share of the hosts, rounded up, at least one", () => {
    assert.deepEqual(planBatches(hosts, { batch: "40%", canary: [] }), [["a", "b"], ["c", "d"], ["e"]]);
    assert.deepEqual(planBatches(hosts, { batch: "1%", canary: [] }).length, 5);
    assert.deepEqual(planBatches(hosts, { batch: "100%", canary: [] }), [hosts]);
  });
});
