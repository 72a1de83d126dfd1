import { strict as assert } from "assert";
import { isFleetError } from "../../model/errors";
import { STEP_TIMEOUT_CODE } from "../../transport/errors";
import { closeAll, exec, execStream, MAX_COMMANDS_PER_CONNECTION, runScript } from "../../transport/ssh";
import { connectionFor, sshRun } from "../support/fleet";

/**
 * Many services on one host deploy at once (the engine runs up to PULUMI_PARALLEL steps), over
 * one pooled connection: the transport keeps the commands running on it within the sessions
 * OpenSSH allows per connection (MaxSessions, 10 by default), and queues the rest.
 */
describe("transport: commands at once on one connection", function () {
  this.timeout(60_000);
  const waitDir = `/tmp/fleet-channel-wait-${process.pid}`;
  /** The holders' files, the flag that releases them, and the files of the commands that meet after. */
  const waitFiles = [waitDir, `${waitDir}.release`, `${waitDir}.all`] as const;
  after(async () => {
    await sshRun("web3", `rm -rf ${waitFiles.join(" ")}`);
    await closeAll();
  });

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

  it("a command that finds every channel held (logs -f streams) times out within its own timeout, and takes no channel later", async () => {
    const conn = connectionFor("web3");
    const [dir, flag, all] = waitFiles;
    await exec(conn, `rm -rf ${dir} ${flag} ${all} && mkdir -p ${dir} ${all}`, { step: "prepare" });
    const count = async (d: string) => Number((await sshRun("web3", `ls ${d} | wc -l`)).stdout.trim());
    // Held like `logs -f` holds one: until released (a flag the system ssh sets), 60 s at most.
    const hold = `touch ${dir}/$$; i=0; while [ ! -e ${flag} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`;
    const holders = Array.from({ length: MAX_COMMANDS_PER_CONNECTION }, () =>
      exec(conn, hold, { step: "hold", timeoutMs: 90_000 }),
    );
    try {
      for (const until = Date.now() + 20_000; (await count(dir)) < MAX_COMMANDS_PER_CONNECTION;) {
        assert.ok(Date.now() < until, "the holders started");
        await new Promise((r) => setTimeout(r, 100));
      }

      // A step with a 1 s timeout: before, it waited for a channel with no limit, its timeout not yet started.
      const started = Date.now();
      const late = exec(conn, "echo late", { step: "late", timeoutMs: 1000 }).then(
        (r) => ({ settled: "resolved" as const, r }),
        (err: unknown) => ({ settled: "rejected" as const, err }),
      );
      // A stream (logs -f, exec) stopped while it waits gives up its place; one that waits too long fails.
      const stop = new AbortController();
      const stopped = execStream(conn, "echo stopped", {
        step: "logs",
        signal: stop.signal,
        onStdout: () => undefined,
        onStderr: () => undefined,
      });
      const impatient = execStream(conn, "echo impatient", {
        step: "logs",
        channelWaitMs: 1000,
        onStdout: () => undefined,
        onStderr: () => undefined,
      }).then(
        () => "resolved",
        (err: unknown) => err,
      );
      setTimeout(() => stop.abort(), 300);
      const outcome = await Promise.race([late, new Promise<"pending">((r) => setTimeout(() => r("pending"), 5000))]);
      const waited = Date.now() - started;
      if (outcome === "pending") assert.fail("the step still waited for a channel after 5 s");
      if (outcome.settled === "resolved") assert.fail(`the step ran: ${JSON.stringify(outcome.r)}`);
      const err = outcome.err;
      assert.ok(waited < 3000, `rejected after ${waited} ms`);
      assert.ok(isFleetError(err), String(err));
      assert.equal(err.kind, "failure");
      assert.equal(err.stage, "run");
      assert.equal(err.step, "late");
      assert.equal(err.code, STEP_TIMEOUT_CODE);
      assert.equal(err.exitCode, null);
      assert.match(err.message, /timed out after 1000 ms/);
      assert.match(err.message, new RegExp(`all ${MAX_COMMANDS_PER_CONNECTION} channels .* were busy`));
      assert.match(err.message, /logs -f/);
      assert.deepEqual(await stopped, { code: null }, "stopped before it started: nothing ran");
      const impatientErr = await impatient;
      assert.ok(isFleetError(impatientErr), String(impatientErr));
      assert.equal(impatientErr.code, STEP_TIMEOUT_CODE);
      assert.match(impatientErr.message, /waiting for an SSH channel/);
    } finally {
      await sshRun("web3", `touch ${flag}`);
      const held = await Promise.all(holders);
      assert.deepEqual(
        held.map((r) => r.code),
        Array(MAX_COMMANDS_PER_CONNECTION).fill(0),
      );
    }

    // No place leaked to the ones that gave up: all the channels run side by side again.
    const meet = `touch ${all}/$$; i=0; while [ "$(ls ${all} | wc -l)" -lt ${MAX_COMMANDS_PER_CONNECTION} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; ls ${all} | wc -l`;
    const met = await Promise.all(
      Array.from({ length: MAX_COMMANDS_PER_CONNECTION }, () => exec(conn, meet, { step: "meet", timeoutMs: 30_000 })),
    );
    assert.deepEqual(
      met.map((r) => r.stdout.trim()),
      Array(MAX_COMMANDS_PER_CONNECTION).fill(String(MAX_COMMANDS_PER_CONNECTION)),
      `all ${MAX_COMMANDS_PER_CONNECTION} channels at once`,
    );
    const later = await exec(conn, "echo later", { step: "later", timeoutMs: 10_000 });
    assert.equal(later.stdout, "later\n");
  });
});

/**
 * A step's timeout reaches root's processes when the SSH user is not root: runScript runs the
 * script as root through `sudo -n`, and the host's own `timeout` must run as root too (scriptShell:
 * inside sudo), or its KILL cannot reach what the script started (a hung step holding a lock).
 */
describe("transport: a timed-out root step through a sudo user", function () {
  this.timeout(60_000);
  const pidFile = `/tmp/fleet-hung-step-${process.pid}.pid`;
  const lock = `/tmp/fleet-hung-step-${process.pid}.lock`;
  after(async () => {
    // By its pid, and only while that pid is still this test's sleep.
    await sshRun(
      "web1",
      `p=$(cat ${pidFile} 2>/dev/null) && [ "$(tr '\\0' ' ' </proc/$p/cmdline 2>/dev/null)" = "sleep 6170 " ] && kill -9 $p; rm -f ${pidFile} ${lock}`,
    );
    await closeAll();
  });

  it("a runScript step (sudo -n, as root) that hangs holding a lock is killed on the host at its timeout", async () => {
    const conn = connectionFor("web1", "deploy");
    const sleeping = () => sshRun("web1", "pgrep -x -f 'sleep 6170'");
    assert.equal((await sleeping()).code, 1, "no `sleep 6170` before the test");
    const script = `exec 9>${lock}; flock 9; sleep 6170 & echo $! >${pidFile}; wait`;
    const started = Date.now();
    await assert.rejects(runScript(conn, script, { step: "hung", timeoutMs: 1000 }), (err: unknown) => {
      assert.ok(isFleetError(err), String(err));
      assert.equal(err.kind, "failure");
      assert.equal(err.code, STEP_TIMEOUT_CODE);
      assert.match(err.message, /timed out after 1000 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
    assert.match((await sshRun("web1", `cat ${pidFile}`)).stdout, /^\d+\n$/, "the script did start its sleep");
    // The host's timeout fires just after ours (underHostTimeout: 2 s later).
    let left = await sleeping();
    for (const until = Date.now() + 10_000; left.code === 0 && Date.now() < until; left = await sleeping()) {
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(left.code, 1, `the hung step outlived its timeout on the host: pid ${left.stdout.trim()}`);
    assert.equal((await sshRun("web1", `flock -n ${lock} true`)).code, 0, "its lock is free");
  });
});
