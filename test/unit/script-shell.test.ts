import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import { scriptShell } from "../../transport/ssh";

/** transport/ssh.ts scriptShell: the host command runScript sends its script to (on stdin). */
describe("scriptShell (transport/ssh.ts)", () => {
  it("root: the host's timeout around root's shell, the script on stdin", () => {
    assert.equal(scriptShell("root", 5000), "timeout -s KILL 7 /bin/sh -s");
  });

  it("another user: the timeout inside `sudo -n`, as root, where its KILL reaches root's processes", () => {
    assert.equal(scriptShell("deploy", 5000), "sudo -n timeout -s KILL 7 /bin/sh -s");
    assert.equal(scriptShell("deploy", 1), "sudo -n timeout -s KILL 3 /bin/sh -s");
  });

  it("runs the script from stdin and passes its exit code through; the host's timeout kills what it started", () => {
    const cmd = scriptShell("root", 5000);
    const out = (script: string) => execFileSync("/bin/sh", ["-c", cmd], { input: script, encoding: "utf8" });
    assert.equal(out(`printf '%s|' "it's" 'a "b"' $((1 + 1))`), `it's|a "b"|2|`);
    assert.throws(
      () => out("exit 3"),
      (err: { status?: number }) => err.status === 3,
    );
    const started = Date.now();
    const killed = scriptShell("root", 1).replace(/KILL 3/, "KILL 1");
    assert.throws(
      () => execFileSync("/bin/sh", ["-c", killed], { input: "sleep 30 & wait", stdio: ["pipe", "ignore", "ignore"] }),
      (err: { status?: number | null; signal?: string | null }) => err.status === 137 || err.signal === "SIGKILL",
    );
    assert.ok(Date.now() - started < 10_000, `killed after ${Date.now() - started} ms`);
  });
});
