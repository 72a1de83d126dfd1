import { strict as assert } from "assert";
import { closeAll, exec, MAX_COMMANDS_PER_CONNECTION } from "../../transport/ssh";
import { connectionFor } from "../support/fleet";

/**
 * Many services on one host deploy at once (the engine runs up to PULUMI_PARALLEL steps), over
 * one pooled connection: the transport keeps the commands running on it within the sessions
 * OpenSSH allows per connection (MaxSessions, 10 by default), and queues the rest.
 */
describe("transport: commands at once on one connection", function () {
  this.timeout(60_000);
  after(() => closeAll());

  it(`runs 24 commands through at most ${MAX_COMMANDS_PER_CONNECTION} channels at a time, every one to completion`, async () => {
    const conn = connectionFor("web3");
    const dir = `/tmp/fleet-channel-gate-${process.pid}`;
    await exec(conn, `rm -rf ${dir} && mkdir -p ${dir}`, { step: "prepare" });
    // Each command counts the commands running beside it (itself included), then holds its channel a while.
    const script = `touch ${dir}/$$; ls ${dir} | wc -l; sleep 0.3; rm -f ${dir}/$$`;
    const results = await Promise.all(Array.from({ length: 24 }, () => exec(conn, script, { step: "count" })));
    await exec(conn, `rm -rf ${dir}`, { step: "cleanup" });
    assert.deepEqual(
      results.map((r) => r.code),
      Array(24).fill(0),
    );
    const seen = results.map((r) => Number(r.stdout.trim()));
    assert.ok(Math.max(...seen) <= MAX_COMMANDS_PER_CONNECTION, `up to ${Math.max(...seen)} at once`);
    assert.ok(Math.max(...seen) >= 2, "the commands did run side by side");
  });
});
