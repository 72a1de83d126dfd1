import { strict as assert } from "assert";
import { spawn } from "child_process";
import { processAlive, processState } from "../../engine/process-alive";

describe("processAlive (engine/process-alive.ts)", () => {
  it("a running process is alive; a zombie, which signal 0 still reaches, is not", async () => {
    // The child outlives the shell's exec into `sleep 5`, which never reaps it: a zombie once
    // it exits. (A child that exits before the exec may be reaped by the shell itself.)
    const parent = spawn("/bin/sh", ["-c", "sleep 0.5 & echo $!; exec sleep 5"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    try {
      const zombie = Number(
        await new Promise<string>((resolve) => parent.stdout.once("data", (d: Buffer) => resolve(d.toString()))),
      );
      for (let waited = 0; processState(zombie) !== "Z" && waited < 4000; waited += 50) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(processState(zombie), "Z", "the child became a zombie");
      assert.doesNotThrow(() => process.kill(zombie, 0), "signal 0 reaches the zombie");
      assert.equal(processAlive(zombie), false);
      assert.equal(processAlive(parent.pid!), true);
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
