import { strict as assert } from "assert";
import { channelGate } from "../../transport/channel-gate";

/** transport/channel-gate.ts: the SSH channels of one connection, as transport/ssh.ts hands them out. */
describe("channelGate (transport/channel-gate.ts)", () => {
  const NEVER = Number.POSITIVE_INFINITY;
  const later = (ms: number) => Date.now() + ms;
  const tick = () => new Promise((r) => setImmediate(r));

  it("grants up to its limit at once; the next caller waits until one is freed", async () => {
    const gate = channelGate(2);
    const a = await gate.acquire(NEVER);
    const b = await gate.acquire(NEVER);
    assert.ok(a && b);
    let granted: (() => void) | undefined;
    void gate.acquire(NEVER).then((f) => (granted = f));
    const third = () => granted;
    await tick();
    assert.equal(third(), undefined, "the third waits");
    assert.deepEqual([gate.active, gate.waiting], [2, 1]);
    a();
    await tick();
    assert.ok(third(), "the freed place went to the waiter");
    assert.deepEqual([gate.active, gate.waiting], [2, 0]);
    a();
    assert.equal(gate.active, 2, "freeing twice frees once");
    b();
    third()!();
    assert.deepEqual([gate.active, gate.waiting], [0, 0]);
  });

  it("serves waiters first come, first served, and a caller arriving as a place frees does not jump the queue", async () => {
    const gate = channelGate(1);
    const held = await gate.acquire(NEVER);
    const order: string[] = [];
    const waiter = (name: string) =>
      gate.acquire(NEVER).then((free) => {
        order.push(name);
        return free!;
      });
    const first = waiter("first");
    const second = waiter("second");
    held!();
    const newcomer = waiter("newcomer"); // synchronously after the free, before the first waiter resumes
    (await first)();
    (await second)();
    (await newcomer)();
    assert.deepEqual(order, ["first", "second", "newcomer"]);
    assert.deepEqual([gate.active, gate.waiting], [0, 0]);
  });

  it("a waiter whose deadline passes gets nothing and leaves the queue: the next free place goes past it, none leaks", async () => {
    const gate = channelGate(1);
    const held = await gate.acquire(NEVER);
    const started = Date.now();
    const gaveUp = gate.acquire(later(100));
    const patient = gate.acquire(NEVER);
    assert.equal(await gaveUp, undefined);
    const waited = Date.now() - started;
    assert.ok(waited >= 90 && waited < 1000, `gave up after ${waited} ms`);
    assert.equal(gate.waiting, 1, "the one that gave up left the queue");
    held!();
    const free = await patient;
    assert.ok(free, "the place went to the waiter behind it");
    free();
    assert.deepEqual([gate.active, gate.waiting], [0, 0], "no place is held by the one that gave up");
    const again = await gate.acquire(later(10));
    assert.ok(again, "the place is free again at once");
  });

  it("an aborted waiter leaves the queue; an aborted signal never waits", async () => {
    const gate = channelGate(1);
    const held = await gate.acquire(NEVER);
    const stop = new AbortController();
    const aborted = gate.acquire(NEVER, stop.signal);
    await tick();
    assert.equal(gate.waiting, 1);
    stop.abort();
    assert.equal(await aborted, undefined);
    assert.equal(gate.waiting, 0);
    assert.equal(await gate.acquire(NEVER, stop.signal), undefined, "already aborted: nothing to wait for");
    held!();
    assert.deepEqual([gate.active, gate.waiting], [0, 0]);
  });

  it("a free place is granted even past the deadline (the caller's own timer judges what is left)", async () => {
    const gate = channelGate(1);
    const free = await gate.acquire(Date.now() - 1);
    assert.ok(free);
    free();
  });
});
