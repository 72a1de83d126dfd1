import { strict as assert } from "assert";
import { spawn } from "child_process";
import { processAlive } from "../../engine/process-alive";

describe("processAlive (engine/process-alive.ts)", () => {
  it("a running process is alive; a zombie, which signal 0 still reaches, is not", async () => {
    // `sleep 0`'s parent execs into `sleep 3`, which never reaps it: a zombie for 3 s.
    const parent = spawn("/bin/sh", ["-c", "sleep 0 & echo $!; exec sleep 3"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const zombie = Number(
        await new Promise<string>((resolve) => parent.stdout.once("data", (d: Buffer) => resolve(d.toString()))),
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.doesNotThrow(() => process.kill(zombie, 0), "signal 0 reaches the zombie");
      assert.equal(processAlive(zombie), false);
      assert.equal(processAlive(parent.pid!), true);
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
