import { strict as assert } from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { activateScript, finalizeScript, prepareScript, rollbackScript } from "../../commands/service";
import { parseFacts } from "../../commands/facts";
import { remoteStepFailed } from "../../transport/errors";
import { underHostTimeout } from "../../transport/ssh";
import { localServiceSpec, runLocalScript } from "../support/local-sh";

/**
 * Guards for the bugs the fault matrix (test/faults, issue #10) found, each at the level of the
 * script or function that had it. Scripts run here with the local /bin/sh in a temporary root.
 */

const specAt = (root: string) => localServiceSpec(root, `fleet-faults-unit-${process.pid}`, { migrate: "true" });
const run = (script: string, dir: string) => runLocalScript(script, dir);

describe("fixes from the fault matrix (issue #10)", () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-faults-unit-"));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("a release dir an interrupted deploy left half-staged is not 'present': it is staged (built, migrated) again", () => {
    const spec = specAt(path.join(tmp, "root"));
    const rel = path.join(tmp, "root", "svc", "releases", spec.releaseId);
    fs.mkdirSync(rel, { recursive: true });
    const owner = { who: "t@h", machine: "h", pid: 1, since: "now", release: spec.releaseId, token: "aa" };
    const present = () => {
      const r = run(prepareScript(spec, owner), tmp);
      assert.equal(r.code, 0, r.stderr);
      fs.rmSync(path.join(tmp, "root", "svc", ".lock"), { recursive: true });
      return parseFacts(r.stdout).one["release_present"];
    };
    assert.equal(present(), "0", "a dir without .fleet-staged (build or migrate cut short)");
    fs.writeFileSync(path.join(rel, ".fleet-activated"), "0\n");
    assert.equal(present(), "1", "a release activated before (staged before the marker existed)");
    fs.rmSync(path.join(rel, ".fleet-activated"));
    fs.writeFileSync(path.join(rel, ".fleet-staged"), "");
    assert.equal(present(), "1", "a release staged, built and migrated to the end");
  });

  it("the activation marks a release staged only after its build and migration", () => {
    const s = activateScript(specAt("/srv/fleet"), {
      stage: true,
      envFile: "A=1\n",
      token: "t0k3n",
      watchdogDeadlineMs: 24_000,
    });
    const staged = s.indexOf("mark_set 0123456789ab staged 1");
    assert.ok(staged > 0, "the staged mark is written");
    assert.ok(staged > s.indexOf("phase migrate") && staged < s.indexOf("phase switch"));
  });

  it("the switch writes what needs space first, then commits current and env by rename, then reloads systemd", () => {
    const s = activateScript(specAt("/srv/fleet"), {
      stage: false,
      envFile: "A=1\n",
      token: "t0k3n",
      watchdogDeadlineMs: 24_000,
    });
    const at = (needle: string) => {
      const i = s.indexOf(needle, s.indexOf("phase switch"));
      assert.ok(i > 0, `the switch has ${needle}`);
      return i;
    };
    const saved = at('.rollback/saved"');
    const envTmp = at("shared/env.fleet-tmp");
    const activated = at('activated "$(date +%s%3N)"');
    const current = at('mv -Tf "$D/.current.tmp" "$D/current"');
    const env = at("mv -f /srv/fleet/svc/shared/env.fleet-tmp /srv/fleet/svc/shared/env");
    const reload = at("systemctl daemon-reload");
    assert.ok(at('.rollback/env"') < saved && saved < envTmp, "saved for the rollback before anything is written");
    assert.ok(envTmp < activated && activated < current, "space-needing writes before the commit");
    assert.ok(current < env && env < reload, "current and env committed back to back, daemon-reload after");
  });

  it("a rollback after a switch that saved nothing changes nothing (restored=none)", () => {
    const spec = specAt(path.join(tmp, "root"));
    const d = path.join(tmp, "root", "svc");
    fs.mkdirSync(path.join(d, ".rollback"), { recursive: true });
    fs.mkdirSync(path.join(d, "releases", "old"), { recursive: true });
    fs.symlinkSync("releases/old", path.join(d, "current"));
    fs.mkdirSync(path.join(d, ".lock"));
    fs.writeFileSync(path.join(d, ".lock", "owner"), "token=t0k3n\n");
    const r = run(rollbackScript(spec, "t0k3n"), tmp);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseFacts(r.stdout).one["restored"], "none");
    assert.equal(fs.readlinkSync(path.join(d, "current")), "releases/old", "current untouched");
    assert.ok(!fs.existsSync(path.join(d, ".marks", "old")), "the serving release is not marked failed");
  });

  it("a rollback after the database was restored un-stages the failed release (its migrations must run again)", () => {
    const spec = specAt("/srv/fleet");
    assert.match(
      rollbackScript(spec, "t0k3n", { unstage: true }),
      /mark_clear "\$\{failed##\*\/\}" staged; mark_clear "\$\{failed##\*\/\}" activated/,
    );
    assert.doesNotMatch(rollbackScript(spec, "t0k3n"), /mark_clear "\$\{failed##\*\/\}" staged/);
  });

  it("finalize first stops what is left of the deploy's last script (its recorded process group), and only that", async () => {
    const spec = specAt(path.join(tmp, "root"));
    const lock = path.join(tmp, "root", "svc", ".lock");
    const orphan = () => {
      // detached: a process group of its own, like an SSH session's script
      const child = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
      child.unref();
      return child.pid!;
    };
    const starttime = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[21]!;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2]!.startsWith("Z");
      } catch {
        return false;
      }
    };
    const args = {
      deleteReleases: [],
      audit: { who: "w", from: "old", to: "t", result: "failed" as const },
      elapsedBeforeMs: 0,
      token: "t0k3n",
    };

    const stranger = orphan();
    fs.mkdirSync(lock, { recursive: true });
    fs.writeFileSync(path.join(lock, "owner"), "who=w\ntoken=t0k3n\n");
    fs.writeFileSync(path.join(lock, "script"), `${stranger} 1\n`); // its start time does not match
    const first = run(finalizeScript(spec, args), tmp);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(alive(stranger), "a process whose start time differs is not the recorded one: left alone");
    process.kill(-stranger, "SIGKILL");

    const left = orphan();
    fs.mkdirSync(lock, { recursive: true });
    fs.writeFileSync(path.join(lock, "owner"), "who=w\ntoken=t0k3n\n");
    fs.writeFileSync(path.join(lock, "script"), `${left} ${starttime(left)}\n`);
    const r = run(finalizeScript(spec, args), tmp);
    assert.equal(r.code, 0, r.stderr);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!alive(left), "the recorded group is killed");
    assert.ok(!fs.existsSync(lock), "and the lock released");
  });

  it("a failed step's phase comes from all of stderr, not the tail its own output may have filled", () => {
    const noise = Array.from({ length: 40 }, (_, i) => `systemd status line ${i}`).join("\n");
    const err = remoteStepFailed(
      "h",
      "switch",
      "sh",
      70,
      "",
      `fleet-phase: switch\nfleet-phase: restart\n${noise}\n`,
      "exit code 70",
      [],
    );
    assert.doesNotMatch(err.stderrTail, /fleet-phase/, "the tail lost the marker");
    assert.equal(err.phase, "restart");
  });

  it("the host runs a step under its own timeout, the command unchanged (quotes included)", () => {
    const cmd = underHostTimeout(`printf '%s|' "it's" 'a "b"' $((1 + 1))`, 5000);
    assert.match(cmd, /^timeout -s KILL 7 \/bin\/sh -c '/);
    assert.equal(execFileSync("/bin/sh", ["-c", cmd], { encoding: "utf8" }), `it's|a "b"|2|`);
  });
});
