import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import { serviceLayout } from "../../commands/layout";
import { renderEnvFile, renderUnit } from "../../commands/unit";
import {
  activateScript,
  fastActivateScript,
  breakLockScript,
  deleteScript,
  finalizeScript,
  installScript,
  prepareScript,
  readScript,
  rollbackScript,
  uploadCommand,
} from "../../commands/service";
import { parseFacts } from "../../commands/facts";
import { SERVICE_ENV_RUN } from "../../commands/service-shell";
import type { ServiceSpec } from "../../model/service";

const layout = serviceLayout("/srv/fleet", "web", "web");
const spec: ServiceSpec = {
  name: "web",
  connection: { host: "127.0.0.11", user: "root", privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
  host: "127.0.0.11",
  root: "/srv/fleet",
  unitName: "web",
  runAs: "app",
  releaseId: "0123456789ab",
  commit: "0123456789abcdef0123456789abcdef01234567",
  source: { kind: "path", path: "/src", exclude: [] },
  install: {
    run: "npm ci && echo '$(x)'",
    when: ["package.json", "frontend/package-lock.json"],
    hash: "feedfacefeedface",
  },
  build: "npm run build",
  start: "node server.js",
  env: { PORT: "8080" },
  secretEnv: { TOKEN: "s3cret" },
  unit: renderUnit({ name: "web", runAs: "app", start: "node server.js", layout }),
  health: {
    url: "http://127.0.0.1:8080/health",
    expectStatus: 200,
    bodyContains: "ok",
    version: { url: "http://127.0.0.1:8080/v", field: "commit" },
    timeoutMs: 5000,
    intervalMs: 50,
  },
  keepReleases: 5,
  breakStaleLock: false,
  stepTimeoutMs: 60000,
  minFreeDiskMb: 512,
};
const owner = {
  who: "me@box",
  machine: "box",
  pid: 42,
  since: "2026-01-01T00:00:00Z",
  release: "0123456789ab",
  token: "t0",
};

/** dash is Debian's /bin/sh: the shell these scripts meet on the host. */
function syntaxOk(script: string) {
  execFileSync("/bin/sh", ["-n"], { input: script });
}

/** A script without the takeover functions (commands/watchdog.ts), which end a dead holder's attempt. */
function withoutTakeover(script: string): string {
  const start = script.indexOf("holder_gone() {");
  if (start < 0) return script;
  const end = script.indexOf("\n}\n", script.indexOf("take_over() {", start));
  return script.slice(0, start) + script.slice(end + 3);
}

describe("commands/service builders", () => {
  const scripts: Record<string, string> = {
    prepare: prepareScript(spec, owner),
    breakLock: breakLockScript(spec, "who=x\npid=1\n"),
    installFromStaging: installScript(spec, true),
    installFromRelease: installScript(spec, false),
    activateNew: activateScript(spec, {
      stage: true,
      envFile: renderEnvFile(spec.env, spec.releaseId, spec.commit),
      token: "t0k3n",
      watchdogDeadlineMs: 24_000,
    }),
    activateRetained: activateScript(spec, {
      stage: false,
      envFile: "A=1\n",
      token: "t0k3n",
      watchdogDeadlineMs: 24_000,
    }),
    fastActivate: fastActivateScript(spec, owner, {
      stage: false,
      envFile: "A=1\n",
      token: "t0k3n",
      watchdogDeadlineMs: 24_000,
    }),
    rollback: rollbackScript(spec, "t0k3n"),
    finalize: finalizeScript(spec, {
      deleteReleases: ["old1", "old2"],
      audit: { who: "me@box", from: "a", to: "b", result: "failed", note: "note with 'quotes' and $(x)" },
      elapsedBeforeMs: 12,
      token: "t0k3n",
    }),
    read: readScript(spec),
    delete: deleteScript(spec),
  };

  for (const [name, script] of Object.entries(scripts)) {
    it(`${name}: is valid POSIX sh and starts with set -eu`, () => {
      syntaxOk(script);
      assert.match(script, /^set -eu\n/);
    });
  }

  it("secrets never appear in a script except the activate step's env file (which travels on stdin)", () => {
    for (const [name, script] of Object.entries(scripts)) {
      if (name.startsWith("activate")) continue;
      assert.ok(!script.includes("s3cret"), name);
    }
  });

  it("the upload runs through sudo for non-root users", () => {
    assert.doesNotMatch(uploadCommand(spec), /sudo/);
    assert.match(
      uploadCommand({ ...spec, connection: { ...spec.connection, user: "deploy" } }),
      /^sudo -n \/bin\/sh -c /,
    );
  });

  it("a build failure removes the half-built release and never reaches the switch", () => {
    const s = scripts["activateNew"]!;
    assert.ok(s.indexOf("phase build") < s.indexOf("phase switch"));
    assert.match(s, /as_user 'npm run build'\) \|\| \{ rc=\$\?; rm -rf "\$R"; mark_drop 0123456789ab; exit \$rc; \}/);
  });

  it("the switch saves current, unit and env before replacing them, and swaps current by rename", () => {
    const s = scripts["activateNew"]!;
    const save = s.indexOf(".rollback/current");
    assert.ok(save > 0 && save < s.indexOf("mv -Tf"));
    assert.match(
      s,
      /ln -sfn releases\/0123456789ab "\$D\/\.current\.tmp" && mv -Tf "\$D\/\.current\.tmp" "\$D\/current"/,
    );
    assert.match(s, /systemctl daemon-reload/);
    // daemon-reload runs only when the unit on the host differs from the rendered one.
    assert.match(
      s,
      /if \[ ! -f \/etc\/systemd\/system\/web\.service \] \|\| \[ "\$\(sha256sum < \/etc\/systemd\/system\/web\.service \| cut -c1-64\)" != [0-9a-f]{64} \]; then\n.*\n  systemctl daemon-reload/,
    );
  });

  it("the activation only gathers the gate's evidence: it reads no version field and finalizes nothing (one judge)", () => {
    for (const name of ["activateNew", "activateRetained", "fastActivate"]) {
      // (taking over a dead holder's lock ends that holder's attempt: its line and unlock are its own)
      const s = withoutTakeover(scripts[name]!);
      // The version body is reported whole (base64) for the deploying side's judgeHealth ...
      assert.match(s, /echo "version_body=\$\(head -c 4096 "\$tmp\/version"/, name);
      // ... and never matched on the host (a sed of the field, a compare with the commit).
      assert.doesNotMatch(s, /sed[^\n]*commit|\$tmp\/version" \|/, name);
      // (only a new release's REVISION names the commit: nothing compares it)
      if (name !== "activateNew") assert.ok(!s.includes(spec.commit), `${name} compares the commit`);
      // No retention, no audit line, no unlock: the lock is held until the verdict is in.
      assert.doesNotMatch(s, /phase finalize|deploy\.log|releases\/old/, name);
      const unlocks = s.match(/rm -rf "\$D\/\.lock"/g) ?? [];
      // (the fast path gives the lock back only when the release is gone: `fast=0`, nothing switched)
      assert.equal(unlocks.length, name === "fastActivate" ? 1 : 0, name);
      assert.match(s, /phase health[\s\S]*echo "result=\$result"\n[\s\S]*$/, name);
    }
    assert.match(scripts["fastActivate"]!, /rm -rf "\$D\/\.lock"; echo fast=0; exit 0/);
  });

  it("finalize deletes exactly the releases it is given, and writes the audit line with the release before", () => {
    const s = scripts["finalize"]!;
    assert.match(
      s,
      /rm -rf \/srv\/fleet\/web\/releases\/old1; mark_drop old1\nrm -rf \/srv\/fleet\/web\/releases\/old2; mark_drop old2\n/,
    );
    assert.match(s, / me@box a b failed /);
    assert.ok(s.indexOf("deploy.log") < s.lastIndexOf('rm -rf "$D/.lock"'), "the lock goes last");
  });

  it("the unit runs from current, reads env from shared/ and disables the start limit", () => {
    const unit = spec.unit;
    assert.match(unit, /^WorkingDirectory=\/srv\/fleet\/web\/current$/m);
    assert.match(unit, /^EnvironmentFile=\/srv\/fleet\/web\/shared\/env$/m);
    assert.match(unit, /^StartLimitIntervalSec=0$/m);
    assert.match(unit, /^User=app$/m);
    assert.match(unit, /^Restart=always$/m);
    assert.match(unit, /^ExecStart=\/bin\/sh -c "node server.js"$/m);
  });

  it("the env file carries FLEET_RELEASE and FLEET_COMMIT, sorted", () => {
    assert.equal(
      renderEnvFile({ B: "2", A: 'x"y' }, "rel", "abc"),
      'A="x\\"y"\nB="2"\nFLEET_COMMIT="abc"\nFLEET_RELEASE="rel"\n',
    );
  });

  it("parseFacts reads key=value lines and collects repeated keys", () => {
    const f = parseFacts("current=abc\nrelease=a 1 -\nrelease=b 2 -\nnoise line\nbody=YQ==\n");
    assert.equal(f.one["current"], "abc");
    assert.deepEqual(f.all["release"], ["a 1 -", "b 2 -"]);
    assert.equal(f.one["body"], "YQ==");
  });
});

describe("commands/service builders: hostile values (issue #10)", () => {
  const fs = require("fs") as typeof import("fs");
  const os = require("os") as typeof import("os");
  const path = require("path") as typeof import("path");

  it("the migration's env file cannot redirect the script: D, RUN_AS and PATH in it stay the migration's", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-migrate-"));
    try {
      const script = activateScript(
        { ...spec, migrate: "m" },
        {
          stage: true,
          envFile: renderEnvFile({}, spec.releaseId, spec.commit),
          token: "t0k3n",
          watchdogDeadlineMs: 24_000,
        },
      );
      const fn = script.split("\n").find((l) => l.startsWith("migrate_as() "));
      assert.ok(fn, "the migration runs through migrate_as");
      assert.match(script, /migrate_as "\$D\/\.migrate-env" "\$RUN_AS" "\$\(id -un\)" m\)/);
      const envFile = path.join(dir, "env");
      const out = path.join(dir, "out");
      fs.writeFileSync(
        envFile,
        renderEnvFile({ D: "/nowhere", RUN_AS: "someone-else", PATH: "/nonexistent" }, "r", "c"),
      );
      // Run as the current user (so no runuser); the command sees the env, fleet's plumbing does not.
      execFileSync(
        "/bin/sh",
        [
          "-c",
          `set -eu\n${SERVICE_ENV_RUN}\n${fn}\nme=$(id -un)\nmigrate_as "$1" "$me" "$me" 'printf "%s|%s|%s" "$D" "$RUN_AS" "$PATH" > ${out}'`,
          "sh",
          envFile,
        ],
        { env: { ...process.env, ROOTS_OWN: "not passed on" } },
      );
      assert.equal(fs.readFileSync(out, "utf8"), "/nowhere|someone-else|/nonexistent");
      // Tools planted in the PATH the env sets are never what root's shell runs (issue 29).
      const planted = path.join(dir, "bin");
      fs.mkdirSync(planted);
      for (const tool of ["env", "rm", "runuser", "cat", "sh"])
        fs.writeFileSync(path.join(planted, tool), `#!/bin/sh\necho ${tool} >> ${dir}/planted-ran\n`, { mode: 0o755 });
      fs.writeFileSync(envFile, renderEnvFile({ PATH: `${planted}:/usr/bin:/bin` }, "r", "c"));
      execFileSync("/bin/sh", [
        "-c",
        `set -eu\n${SERVICE_ENV_RUN}\n${fn}\nme=$(id -un)\nmigrate_as "$1" "$me" "$me" 'printf "%s" "$PATH" > ${out}'`,
        "sh",
        envFile,
      ]);
      assert.equal(fs.readFileSync(out, "utf8"), `${planted}:/usr/bin:/bin`, "the migration sees its PATH");
      assert.ok(!fs.existsSync(path.join(dir, "planted-ran")), "no planted tool ran");
      assert.ok(!fs.existsSync(envFile), "the env file (secrets) is removed even with PATH unusable");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("every health probe passes the URL to curl as given (-g: no {a,b} or [1-3] globbing)", () => {
    const hostileUrl = { ...spec, health: { ...spec.health, url: "http://127.0.0.1:8080/{a,b}[1-3]" } };
    for (const script of [
      activateScript(hostileUrl, { stage: false, envFile: "A=1\n", token: "t0k3n", watchdogDeadlineMs: 24_000 }),
      rollbackScript(hostileUrl, "t0k3n"),
      readScript(hostileUrl),
    ]) {
      const curls = script.match(/curl [^\n]*/g) ?? [];
      assert.ok(curls.length > 0);
      for (const c of curls) assert.match(c, /^curl -g/, c);
    }
  });
});
