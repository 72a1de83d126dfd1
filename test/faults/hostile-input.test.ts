/**
 * Issue #10, hostile input: fast-check generates names, paths, env values, commands, URLs and
 * unicode/control characters for every user-controlled field of the fleet config.
 *
 * 1. Config validation: each value is accepted, or rejected with a config FleetError whose problem
 *    names the field's exact path and says what the value must be; and a config validation
 *    accepted builds every script without throwing and passes the providers' own checks.
 * 2. The canary (web3, /srv/fleet-canary, ports 18850–18869): values validation accepted go
 *    through the real builders, the scripts run for real through fleet's SSH transport, and the
 *    values are read back where they land (the shell, systemd's EnvironmentFile and ExecStart
 *    parsing, files, argv of the commands, curl's request, libpq's startup packet) and compared
 *    byte for byte. Any executed payload would create the marker file; none may exist.
 *
 * Commands (install.run, build, migrate, start, checks, image checks) are the user's own shell
 * code, trusted by design: they are not checked for "injection", but must reach `sh -c` exactly
 * as written (seen in /proc/<pid>/cmdline), never re-interpreted by fleet's quoting.
 *
 * Reproduce a failure with the printed seed: FLEET_HOSTILE_SEED=<seed> npx mocha … this file.
 */
import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import fc from "fast-check";
import { emitBytes, shq, writeFileAtomic } from "../../commands/quote";
import { renderEnvFile, renderUnit } from "../../commands/unit";
import { serviceLayout } from "../../commands/layout";
import {
  activateScript,
  deleteScript,
  fastActivateScript,
  finalizeScript,
  installScript,
  prepareScript,
  readScript,
  rollbackScript,
  uploadCommand,
  type ActivatePlan,
  type FinalizeArgs,
} from "../../commands/service";
import { statusScript } from "../../commands/status";
import { parseFacts, decodeBase64 } from "../../commands/facts";
import { backupScript, listScript, pruneScript, restoreScript, type BackupSetSpec } from "../../commands/backup";
import { connectionEnv, restoreLines } from "../../commands/backup-engines";
import { IMAGE_MARKER, provisionScript } from "../../commands/image-provision";
import { closeAll } from "../../transport/ssh";
import { judge } from "../../providers/service/gate";
import type { ServiceSpec } from "../../model/service";
import { CANARY_DIR, hostileString, urlLike } from "./support/hostile-arbitraries";
import {
  CONFIG_TARGETS,
  baseConfig,
  buildEverything,
  reportProblem,
  validate,
  type ConfigTarget,
} from "./support/hostile-config";
import {
  FAKE_POSTGRES,
  PIPELINE_APP,
  PORTS,
  RECORDING_HTTP,
  RUN,
  STOP_CANARY,
  SWEEP,
  argvOf,
  envOf,
  nulList,
  onCanary,
  onCanaryOk,
  parseDump,
  dumpDir,
  emptyPgArchive,
  putFile,
  sweep,
} from "./support/hostile-canary";

const SEED = Number(process.env["FLEET_HOSTILE_SEED"] ?? 20260110);
/** Values per config field (× ~90 fields). */
const PER_FIELD = 140;
const MIN_TOTAL = 10_000;

interface Count {
  generated: number;
  accepted: number;
  canary: number;
}
const counts = new Map<string, Count>();
function count(target: string): Count {
  let c = counts.get(target);
  if (!c) counts.set(target, (c = { generated: 0, accepted: 0, canary: 0 }));
  return c;
}

const targetOf = (field: string): ConfigTarget => {
  const t = CONFIG_TARGETS.find((x) => x.field === field);
  if (!t) throw new Error(`no config target ${field}`);
  return t;
};

/**
 * Values for `field` that validation accepts, drawn from its generator (or `arb`), kept by
 * `filter`, then passed through `map` (e.g. a command wrapped around the payload). Every
 * draw validated is a validation case.
 */
function acceptedValues(
  field: string,
  n: number,
  seed: number,
  opts: { arb?: fc.Arbitrary<string>; map?: (v: string) => string; filter?: (v: string) => boolean } = {},
): string[] {
  const t = targetOf(field);
  const out: string[] = [];
  const arb = opts.arb ?? t.arb;
  const c = count(`validation: ${field}`);
  for (let round = 0; out.length < n && round < 40; round++) {
    for (const raw of fc.sample(arb, { numRuns: n, seed: seed + round * 7919 })) {
      if (opts.filter && !opts.filter(raw)) continue;
      const v = opts.map ? opts.map(raw) : raw;
      const cfg = baseConfig();
      t.put(cfg, v);
      c.generated++;
      if (validate(cfg).ok) {
        c.accepted++;
        out.push(v);
        if (out.length === n) break;
      }
    }
  }
  if (out.length < n) throw new Error(`${field}: only ${out.length} of ${n} generated values were accepted`);
  return out;
}

const show = (v: string) => {
  const j = JSON.stringify(v);
  return j.length > 160 ? `${j.slice(0, 150)}…(${v.length} chars)` : j;
};

function assertNoFailures(what: string, failures: readonly string[]): void {
  assert.equal(
    failures.length,
    0,
    `${what}: ${failures.length} failure(s) (seed ${SEED}):\n${failures.slice(0, 25).join("\n")}`,
  );
}

describe("hostile input (issue #10)", function () {
  this.timeout(600_000);
  let t0 = Date.now();

  before(() => {
    t0 = Date.now();
    console.log(`    hostile-input seed ${SEED} (reproduce: FLEET_HOSTILE_SEED=${SEED})`);
  });

  describe("config validation: accepted, or rejected naming the field", () => {
    it("the base config is valid and every builder takes it (so each case below changes one field)", () => {
      const v = validate(baseConfig());
      assert.ok(v.ok, v.ok ? "" : v.problems.join("\n"));
      assert.equal(buildEverything(v.cfg), undefined);
    });

    it(`every user-controlled string field, ${PER_FIELD} hostile values each`, () => {
      const failures: string[] = [];
      CONFIG_TARGETS.forEach((t, i) => {
        const c = count(`validation: ${t.field}`);
        for (const v of fc.sample(t.arb, { numRuns: PER_FIELD, seed: SEED + i })) {
          const cfg = baseConfig();
          const at = t.put(cfg, v);
          c.generated++;
          let verdict;
          try {
            verdict = validate(cfg);
          } catch (err) {
            failures.push(`${t.field} = ${show(v)}: ${(err as Error).message}`);
            continue;
          }
          if (verdict.ok) {
            c.accepted++;
            const broken = buildEverything(verdict.cfg);
            if (broken) failures.push(`${t.field} = ${show(v)}: accepted, but ${broken}`);
          } else {
            const wrong = reportProblem(verdict.problems, at);
            if (wrong) failures.push(`${t.field} = ${show(v)}: ${wrong}`);
          }
        }
      });
      assertNoFailures("config validation", failures);
    });
  });

  describe("on the canary (web3: /srv/fleet-canary, ports 18850–18869)", () => {
    const OUT = `${CANARY_DIR}/out`;

    before(async () => {
      // A clean sandbox and no stale markers; the helper servers run from it.
      await onCanaryOk(
        [
          "set -eu",
          STOP_CANARY,
          `rm -rf ${CANARY_DIR}; mkdir -p ${OUT}; chmod 1777 ${OUT}`,
          `${SWEEP} | while read -r f; do rm -rf "$f"; done`,
          // (Not http.py: that name would shadow Python's http package.)
          putFile(`${CANARY_DIR}/recording_http.py`, RECORDING_HTTP),
          putFile(`${CANARY_DIR}/fake_pg.py`, FAKE_POSTGRES),
          `cd ${CANARY_DIR}`,
          `setsid python3 recording_http.py ${PORTS.http} ${CANARY_DIR}/http.log >http.err 2>&1 < /dev/null & echo $! > http.pid`,
          `setsid python3 fake_pg.py ${PORTS.pg} ${CANARY_DIR}/pg.log >pg.err 2>&1 < /dev/null & echo $! > pg.pid`,
          `for i in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:${PORTS.http}/ready && break; sleep 0.1; done`,
          `curl -fsS -o /dev/null http://127.0.0.1:${PORTS.http}/ready || { cat http.err >&2; exit 1; }`,
          `for i in $(seq 1 50); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", ${PORTS.pg}), 1)' 2>/dev/null && break; sleep 0.1; done`,
          "",
        ].join("\n"),
        "canary setup",
      );
    });

    after(async () => {
      await onCanary([STOP_CANARY, "true", ""].join("\n"), "canary teardown").catch(() => undefined);
      await closeAll();
    });

    afterEach(async function () {
      // After every target: nothing that was data ran as code, anywhere on the canary.
      const found = await sweep();
      assert.deepEqual(found, [], `injection marker(s) after "${this.currentTest?.title}": ${found.join(", ")}`);
    });

    it("quote.ts: shq and emitBytes carry hostile strings through the host's /bin/sh byte-exact", async () => {
      const c = count("canary: shq/emitBytes through dash");
      // NUL cannot be in a shell word (shq refuses it); lone surrogates cannot be UTF-8.
      const values = fc
        .sample(hostileString(), { numRuns: 2600, seed: SEED + 101 })
        .filter((v) => !v.includes("\0") && !/[\ud800-\udfff]/.test(v.replace(/[\ud800-\udbff][\udc00-\udfff]/g, "")));
      c.generated += values.length;
      const script = [
        `cd ${CANARY_DIR}`,
        `{ ${values.map((v) => `printf '%s\\0' ${shq(v)}`).join("\n")}\n} | base64 -w0; echo`,
        `{ ${values.map((v) => `${emitBytes(v)}; printf '\\0'`).join("\n")}\n} | base64 -w0; echo`,
        "",
      ].join("\n");
      const r = await onCanaryOk(script, "shq batch");
      const [viaShq, viaEmit] = r.stdout.split("\n").map(nulList);
      const failures: string[] = [];
      values.forEach((v, i) => {
        if (viaShq![i] !== v) failures.push(`shq ${show(v)} arrived as ${show(viaShq![i] ?? "<missing>")}`);
        if (viaEmit![i] !== v) failures.push(`emitBytes ${show(v)} arrived as ${show(viaEmit![i] ?? "<missing>")}`);
      });
      assert.equal(viaShq!.length, values.length);
      c.accepted += values.length;
      c.canary += values.length;
      assertNoFailures("shq/emitBytes", failures);
    });

    it("env files: accepted env values, rendered and written as the activation does, parse back byte-exact by systemd and by sh", async () => {
      const c = count("canary: env file (systemd EnvironmentFile + sh)");
      // Validated as FOO, written as K<b>_<i>: keep room for the longer key under the exec limit.
      const values = acceptedValues("services.api.env.FOO", 5000, SEED + 202, {
        filter: (v) => Buffer.byteLength(v) <= 131_000,
      });
      // Batches by size: a service's whole environment must fit one exec (ARG_MAX).
      const batches: string[][] = [[]];
      let size = 0;
      for (const v of values) {
        if (size + v.length > 900_000) {
          batches.push([]);
          size = 0;
        }
        batches[batches.length - 1]!.push(v);
        size += v.length + 16;
      }
      const failures: string[] = [];
      for (const [b, batch] of batches.entries()) {
        const env = Object.fromEntries(batch.map((v, i) => [`K${b}_${i}`, v]));
        const file = `${CANARY_DIR}/env-${b}`;
        const script = [
          "set -eu",
          writeFileAtomic(file, renderEnvFile(env, "canary-release", "0123456789abcdef"), "600"),
          `systemd-run --quiet --wait --pipe --collect --unit=fleet-canary-${RUN}-env-${b} -p EnvironmentFile=${file} /usr/bin/env -0 | base64 -w0; echo`,
          `(set -a; . ${file}; set +a; env -0) | base64 -w0; echo`,
          "",
        ].join("\n");
        const r = await onCanaryOk(script, `env file batch ${b}`);
        const [bySystemd, bySh] = r.stdout.split("\n").map(envOf);
        for (const [k, v] of Object.entries(env)) {
          if (bySystemd![k] !== v)
            failures.push(`systemd: ${k} = ${show(v)} arrived as ${show(bySystemd![k] ?? "<unset>")}`);
          if (bySh![k] !== v) failures.push(`sh: ${k} = ${show(v)} arrived as ${show(bySh![k] ?? "<unset>")}`);
        }
        c.generated += batch.length;
        c.accepted += batch.length;
        c.canary += batch.length;
      }
      assertNoFailures("env files", failures);
    });

    it("units: accepted start commands, rendered into units and started by systemd, reach sh -c byte-exact", async () => {
      const c = count("canary: unit ExecStart (systemd start)");
      const dir = `${CANARY_DIR}/units`;
      const failures: string[] = [];
      const BATCH = 400;
      // Two batches at once, each one systemctl start of all its units.
      const runBatch = async (b: number) => {
        const payloads = acceptedValues("services.api.start", BATCH, SEED + 303 + b, {
          map: (p) => `cat /proc/$$/cmdline > ${dir}/out/${b}-N; exec sleep 300 # ${p}`,
        });
        const starts = payloads.map((s, i) => s.replace(`${b}-N;`, `${b}-${i};`));
        const units = starts.map((_, i) => `fleet-canary-${RUN}-u${b}-${i}`);
        const layout = (u: string) => serviceLayout(dir, "svc", u);
        const script = [
          "set -eu",
          `mkdir -p ${dir}/out ${dir}/svc/shared ${dir}/svc/current; : > ${dir}/svc/shared/env`,
          ...starts.map((start, i) =>
            writeFileAtomic(
              `/run/systemd/system/${units[i]}.service`,
              renderUnit({ name: units[i]!, runAs: "root", start, layout: layout(units[i]!) }),
              "644",
            ),
          ),
          `systemctl start ${units.join(" ")}`,
          `for i in $(seq 1 600); do [ "$(ls ${dir}/out | grep -c '^${b}-')" -ge ${BATCH} ] && break; sleep 0.1; done`,
          `systemctl stop ${units.join(" ")}`,
          `rm -f ${units.map((u) => `/run/systemd/system/${u}.service`).join(" ")}`,
          dumpDir(`${dir}/out`),
          "",
        ].join("\n");
        const r = await onCanaryOk(script, `unit batch ${b}`, 180_000);
        const files = parseDump(r.stdout);
        starts.forEach((start, i) => {
          const argv = files[`${b}-${i}`];
          if (argv === undefined) failures.push(`${units[i]}: never ran; start ${show(start)}`);
          else if (argvOf(argv)[2] !== start || argvOf(argv)[1] !== "-c")
            failures.push(`start ${show(start)} reached sh as ${show(JSON.stringify(argvOf(argv)))}`);
        });
        c.generated += BATCH;
        c.accepted += BATCH;
        c.canary += BATCH;
      };
      await Promise.all([0, 1].map(runBatch));
      assertNoFailures("unit ExecStart", failures);
    });

    it("health URLs: every accepted URL is probed as given (status builder, real curl, recording server)", async () => {
      const c = count("canary: health URL (statusScript + curl)");
      const base = `http://127.0.0.1:${PORTS.http}/`;
      const urls = acceptedValues("services.api.health.url", 500, SEED + 404, {
        arb: urlLike(base).map((u) => (u.startsWith(base) ? u : base + u)),
      });
      const root = `${CANARY_DIR}/status`;
      await onCanaryOk(`mkdir -p ${root}/svc; : > ${CANARY_DIR}/http.log\n`, "health URL setup");
      // Four sessions at once (one status script per URL, as `npm run status` runs them).
      const CHUNKS = 4;
      const size = Math.ceil(urls.length / CHUNKS);
      const outputs = await Promise.all(
        Array.from({ length: CHUNKS }, (_, k) => {
          const chunk = urls.slice(k * size, (k + 1) * size);
          const script = chunk.map(
            (u) =>
              `(${statusScript({ root, name: "svc", unitName: `fleet-canary-${RUN}-status`, healthUrl: u })}) | grep '^health=' || echo health=`,
          );
          return onCanaryOk(script.join("\n") + "\n", `health URL batch ${k}`, 180_000);
        }),
      );
      const health = outputs.flatMap((r) => r.stdout.split("\n").filter((l) => l.startsWith("health=")));
      const log = await onCanaryOk(`base64 -w0 < ${CANARY_DIR}/http.log\n`, "health URL log");
      const requests = decodeBase64(log.stdout.trim()).split("\n").filter(Boolean).length;
      const failures: string[] = [];
      urls.forEach((u, i) => {
        if (health[i] !== "health=200")
          failures.push(`${show(u)}: ${health[i] ?? "no answer"} (validation accepted a URL the probe cannot use)`);
      });
      c.generated += urls.length;
      c.accepted += urls.length;
      c.canary += urls.length;
      assertNoFailures("health URLs", failures);
      assert.equal(requests, urls.length, `the recording server saw ${requests} requests for ${urls.length} URLs`);
    });

    it("deploys: hostile services go through prepare, upload, install, activate, fast re-activate, read, status, rollback and delete", async () => {
      const c = count("canary: full deploy pipeline");
      const DEPLOYS = 8;
      const failures: string[] = [];
      const runOne = async (i: number): Promise<void> => {
        const seed = SEED + 500 + i * 31;
        const port = PORTS.pipeline + i;
        const out = `${OUT}/p${i}`;
        const name = acceptedValues("services.<key>", 1, seed, {
          arb: fc.stringMatching(/^[a-z0-9_.@-]{0,8}$/).map((s) => `fleet-canary-${RUN}-${i}${s}`),
        })[0]!;
        const root = acceptedValues("services.api.root", 1, seed + 1, {
          arb: fc
            .stringMatching(/^[A-Za-z0-9_.-]{1,10}(\/[A-Za-z0-9_.-]{1,10}){0,2}$/)
            .map((s) => `${CANARY_DIR}/r${i}/${s}`),
        })[0]!;
        const runAs = i % 2 === 0 ? "root" : "deploy";
        const heredoc = (p: string) => `: <<'FLEETCANARY_EOF'\n${p}\nFLEETCANARY_EOF\n`;
        const noEof = (v: string) => !v.includes("FLEETCANARY_EOF");
        const installRun = acceptedValues("services.api.install.run", 1, seed + 2, {
          map: (p) => `cat /proc/$$/cmdline > ${out}/install.cmdline; : # ${p}`,
        })[0]!;
        const build = acceptedValues("services.api.build", 1, seed + 3, {
          map: (p) => `cat /proc/$$/cmdline > ${out}/build.cmdline; pwd > ${out}/build.pwd; ${heredoc(p)}`,
          filter: noEof,
        })[0]!;
        const migrate = acceptedValues("services.api.migrate", 1, seed + 4, {
          map: (p) =>
            `cat /proc/$$/cmdline > ${out}/migrate.cmdline; env -0 > ${out}/migrate.env; id -un > ${out}/migrate.user; ${heredoc(p)}`,
          filter: noEof,
        })[0]!;
        const start = acceptedValues("services.api.start", 1, seed + 5, {
          map: (p) => `cat /proc/$$/cmdline > ${out}/start.cmdline; exec python3 app.py ${port} ${out} # ${p}`,
        })[0]!;
        // Names the scripts use themselves are valid env keys too: they must not leak into them.
        const own = ["D", "R", "T", "S", "RUN_AS", "prev", "rc", "tmp", "code", "pid", "result", "host_ok", "t0"];
        // Together they must fit one exec (validation's MAX_ENV_BYTES): values stop at 900 kB. Each
        // was validated under a shorter key than it gets here: keep 16 bytes of room for the key.
        let total = 0;
        const fits = (v: string) => Buffer.byteLength(v) <= 131_000 && (total += Buffer.byteLength(v) + 16) < 900_000;
        const envValues = acceptedValues("services.api.env.FOO", 120, seed + 6).filter(fits);
        const secretValues = acceptedValues("secretEnv.api.TOKEN", 120, seed + 7).filter(fits);
        const env = Object.fromEntries(envValues.map((v, k) => [k < own.length ? own[k]! : `E${k}`, v]));
        const secretEnv = Object.fromEntries(secretValues.map((v, k) => [`S${k}_SECRET`, v]));
        const when = [
          ...new Set(acceptedValues("services.api.install.when.0", 16, seed + 8, { filter: (p) => p.length < 200 })),
        ].filter((p, _, all) => !all.some((q) => q !== p && (q.startsWith(p + "/") || p.startsWith(q + "/"))));
        const commit = acceptedValues("pins.api.commit", 1, seed + 9, {
          arb: fc.oneof(fc.stringMatching(/^[0-9a-f]{40}$/), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/)),
        })[0]!;
        const healthUrl = acceptedValues("services.api.health.url", 1, seed + 10, {
          arb: fc
            .stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,30}$/)
            .map((s) => `http://127.0.0.1:${port}/health?${s}`),
        })[0]!;
        const bodyContains = acceptedValues("services.api.health.bodyContains", 1, seed + 11)[0]!;
        const versionUrl = `http://127.0.0.1:${port}/version`;
        const releaseId = `canary-${RUN}-${i}`;
        const layout = serviceLayout(root, name, name);
        const spec: ServiceSpec = {
          name,
          connection: { host: "127.0.0.13", user: "root", privateKey: "", hostKey: "" },
          host: "127.0.0.13",
          root,
          unitName: name,
          runAs,
          releaseId,
          commit,
          source: { kind: "path", path: "/src", exclude: [] },
          install: { run: installRun, when, hash: `deps${i}` },
          build,
          migrate,
          start,
          env,
          secretEnv,
          unit: renderUnit({ name, runAs, start, layout }),
          health: {
            url: healthUrl,
            expectStatus: 200,
            bodyContains,
            version: { url: versionUrl, field: "commit" },
            timeoutMs: 20_000,
            intervalMs: 100,
          },
          keepReleases: 5,
          breakStaleLock: false,
          stepTimeoutMs: 120_000,
          minFreeDiskMb: 1,
        };
        const who = acceptedValues("services.api.env.FOO", 1, seed + 12, {
          filter: (v) => !/\s/.test(v) && v.length < 100,
        })[0]!;
        const note = acceptedValues("services.api.env.FOO", 1, seed + 13, { filter: (v) => v.length < 200 })[0]!;
        // The lock's token (the owner's) is the activation's and its finalize's: the watchdog and
        // the finalize act only on their own deploy's lock.
        const plan: ActivatePlan = {
          stage: true,
          envFile: renderEnvFile({ ...env, ...secretEnv }, releaseId, commit),
          token: `t${i}`,
          watchdogDeadlineMs: 24_000,
        };
        // What the provider finalizes once the gate passed: from the release before (none, then itself).
        const ending = (from: string, token: string): FinalizeArgs => ({
          deleteReleases: [],
          audit: { who, from, to: releaseId, result: "ok", note },
          elapsedBeforeMs: 1,
          token,
        });
        const owner = {
          who,
          machine: "canary",
          pid: process.pid,
          since: new Date().toISOString(),
          release: releaseId,
          token: `t${i}`,
        };
        const fail = (what: string) => failures.push(`deploy ${i} (${name}, runAs ${runAs}): ${what}`);
        const step = async (script: string, what: string) => {
          const r = await onCanary(script, what);
          if (r.code !== 0) fail(`${what} exited ${r.code}: ${r.stderr.slice(-800)}`);
          return r;
        };

        // The release: the app, the body, and a file at every `when` path holding its own name.
        const src = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-hostile-"));
        try {
          fs.writeFileSync(path.join(src, "app.py"), PIPELINE_APP);
          fs.writeFileSync(path.join(src, "body.txt"), `<<${bodyContains}>>`);
          for (const p of when) {
            fs.mkdirSync(path.dirname(path.join(src, p)), { recursive: true });
            fs.writeFileSync(path.join(src, p), p);
          }
          const tarball = execFileSync("tar", ["-czf", "-", "-C", src, "."]);
          await step(`set -eu\nmkdir -p ${out}; chmod 1777 ${out}\n`, "out dir");
          const prep = parseFacts((await step(prepareScript(spec, owner), "prepare")).stdout).one;
          if (prep["release_present"] !== "0" || prep["deps_present"] !== "0")
            fail(`prepare facts ${JSON.stringify(prep)}`);
          await step(`printf '%s' ${tarball.toString("base64")} | base64 -d | { ${uploadCommand(spec)}; }\n`, "upload");
          await step(installScript(spec, true), "install");
          const activated = (await step(activateScript(spec, plan), "activate")).stdout;
          const act = parseFacts(activated).one;
          const gate = judge(spec, activated, commit).verdict;
          if (act["result"] !== "ok" || act["migrated"] !== "1" || !gate.ok)
            fail(`activation facts ${JSON.stringify(act)}, gate ${JSON.stringify(gate)}`);
          await step(finalizeScript(spec, ending("", `t${i}`)), "finalize");
          const reactivated = (
            await step(
              fastActivateScript(spec, { ...owner, token: `u${i}` }, { ...plan, stage: false, token: `u${i}` }),
              "fast activate",
            )
          ).stdout;
          const again = parseFacts(reactivated).one;
          const regate = judge(spec, reactivated, commit).verdict;
          if (again["result"] !== "ok" || again["fast"] === "0" || !regate.ok)
            fail(`re-activation facts ${JSON.stringify(again)}, gate ${JSON.stringify(regate)}`);
          await step(finalizeScript(spec, ending(releaseId, `u${i}`)), "finalize again");
          const read = parseFacts((await step(readScript(spec), "read")).stdout).one;
          if (
            read["current"] !== releaseId ||
            read["commit"] !== commit ||
            read["active"] !== "active" ||
            read["health_status"] !== "200"
          )
            fail(`read facts ${JSON.stringify(read)}`);
          const status = parseFacts(
            (await step(statusScript({ root, name, unitName: name, healthUrl }), "status")).stdout,
          ).one;
          if (status["release"] !== releaseId || status["commit"] !== commit || status["health"] !== "200")
            fail(`status facts ${JSON.stringify(status)}`);
          // The last line is the re-activation's: from this release to itself.
          const logLine = decodeBase64(status["last"]).replace(/\n$/, "");
          const expectLog = ` ${who} ${releaseId} -> ${releaseId} ok `;
          const expectNote = note ? ` ${note.replace(/\s+/g, " ").slice(0, 300)}` : "";
          if (!logLine.includes(expectLog) || !logLine.endsWith(expectNote))
            fail(`deploy.log line ${show(logLine)} lacks ${show(expectLog)} … ${show(expectNote)}`);

          // Read back what arrived: argv of every command, the environments, the deps files.
          const lookup = [
            dumpDir(out),
            `echo "revision=$(base64 -w0 < ${shq(layout.current)}/REVISION)"`,
            `[ -e ${shq(layout.dir)}/.migrate-env ] && echo migrate_env_left=1 || true`,
            `cd ${shq(`${layout.deps}/deps${i}`)} && python3 -c 'import os,json,base64
r={}
for d,_,fs in os.walk("."):
  for f in fs:
    p=os.path.join(d,f)[2:]
    r[base64.b64encode(os.fsencode(p)).decode()]=base64.b64encode(open(p,"rb").read()).decode()
print("deps="+base64.b64encode(json.dumps(r).encode()).decode())'`,
            "",
          ].join("\n");
          const got = await step(lookup, "read back");
          const files = parseDump(got.stdout);
          const facts = parseFacts(got.stdout).one;
          const argv = (f: string) => (files[f] ? argvOf(files[f]!) : undefined);
          for (const [what, command] of [
            ["install", installRun],
            ["build", build],
            ["migrate", migrate],
            ["start", start],
          ] as const) {
            const a = argv(`${what}.cmdline`);
            if (!a || a[1] !== "-c" || a[2] !== command)
              fail(`${what} command reached sh as ${a ? show(JSON.stringify(a)) : "nothing"}`);
          }
          if (decodeBase64(facts["revision"]).replace(/\n$/, "") !== commit)
            fail(`REVISION is ${show(decodeBase64(facts["revision"]))}`);
          if (facts["migrate_env_left"]) fail("the migration's env file (secrets) was left on the host");
          const migrateUser = files["migrate.user"] ? decodeBase64(files["migrate.user"]).trim() : "";
          if (migrateUser !== runAs) fail(`the migration ran as ${show(migrateUser)}, not ${runAs}`);
          const all = { ...env, ...secretEnv, FLEET_RELEASE: releaseId, FLEET_COMMIT: commit };
          for (const [where, file] of [
            ["service (systemd)", "service.env"],
            ["migration (sh)", "migrate.env"],
          ] as const) {
            const got = files[file] ? envOf(files[file]!) : {};
            for (const [k, v] of Object.entries(all))
              if (got[k] !== v) fail(`${where}: ${k} = ${show(v)} arrived as ${show(got[k] ?? "<unset>")}`);
          }
          const deps = JSON.parse(decodeBase64(facts["deps"]) || "{}") as Record<string, string>;
          const depFiles = Object.fromEntries(Object.entries(deps).map(([k, v]) => [decodeBase64(k), decodeBase64(v)]));
          for (const p of when)
            if (depFiles[p] !== p) fail(`install.when ${show(p)} arrived as ${show(depFiles[p] ?? "<missing>")}`);
          const requests = decodeBase64(files["requests"]).split("\n").filter(Boolean).map(decodeBase64);
          const wantPath = healthUrl.slice(`http://127.0.0.1:${port}`.length);
          if (!requests.includes(wantPath))
            fail(`health probe never asked for ${show(wantPath)}; got ${show(requests.join(" | "))}`);

          // After the re-activation, what rollback puts back is this same release: restart and probe again.
          // A rollback runs only while its deploy holds the lock.
          const lockDir = shq(`${layout.dir}/.lock`);
          await step(`mkdir ${lockDir} && printf 'token=r${i}\\n' > ${lockDir}/owner\n`, "lock for the rollback");
          const back = parseFacts((await step(rollbackScript(spec, `r${i}`), "rollback")).stdout).one;
          await step(`rm -rf ${lockDir}\n`, "unlock");
          if (back["restored"] !== releaseId || back["restored_commit"] !== commit || back["result"] !== "ok")
            fail(`rollback facts ${JSON.stringify(back)}`);
          await step(deleteScript(spec), "delete");
          const gone = await onCanary(
            `[ -e ${shq(layout.unitFile)} ] || [ -e ${shq(layout.dir)} ] && echo left || true\n`,
            "gone?",
          );
          if (gone.stdout.includes("left")) fail("rollback + delete left the unit or the service directory");
        } finally {
          fs.rmSync(src, { recursive: true, force: true });
        }
        c.generated += 1;
        c.accepted += 1;
        c.canary += Object.keys(env).length + Object.keys(secretEnv).length + when.length + 9;
      };
      const guarded = (i: number) => runOne(i).catch((err: Error) => void failures.push(`deploy ${i}: ${err.message}`));
      for (let i = 0; i < DEPLOYS; i += 4) await Promise.all([0, 1, 2, 3].map((k) => guarded(i + k)));
      assertNoFailures("deploy pipeline", failures);
    });

    it("backups: SQLite at an accepted path, and ids read back from a host's manifest, stay data", async () => {
      const c = count("canary: backup builders (sqlite, manifest ids)");
      const failures: string[] = [];
      // 1. A real SQLite backup + restore at accepted hostile paths, with accepted table names.
      const dbPaths = acceptedValues("backups.db.sqlite.path", 6, SEED + 600, {
        arb: fc.stringMatching(/^[A-Za-z0-9_.@+-]{1,16}$/).map((s) => `${CANARY_DIR}/db/${s}`),
        filter: (p) => !p.endsWith("/.") && !p.endsWith("/.."),
      });
      const tables = acceptedValues("backups.db.verifyTables.0", 6, SEED + 601, {
        arb: fc.stringMatching(/^[a-z_][a-z0-9_]{0,20}$/),
      });
      for (const [k, db] of dbPaths.entries()) {
        const table = tables[k]!;
        const spec: BackupSetSpec = {
          backupsDir: `${CANARY_DIR}/backups/b${k}`,
          engine: "sqlite",
          target: { engine: "sqlite", sqlite: { path: db } },
          verifyTables: [table],
        };
        const id = `canary-20260101T00000${k}Z-none`;
        const setup = `mkdir -p ${CANARY_DIR}/db && sqlite3 ${shq(db)} ${shq(`CREATE TABLE IF NOT EXISTS "${table}"(x); DELETE FROM "${table}"; INSERT INTO "${table}" VALUES (1),(2),(3);`)}\n`;
        await onCanaryOk(setup, "sqlite setup");
        const taken = await onCanary(
          backupScript(spec, { id, time: "2026-01-01T00:00:00Z", releases: [] }),
          "sqlite backup",
        );
        if (taken.code !== 0) failures.push(`backup of ${show(db)}: exit ${taken.code} ${taken.stderr.slice(-400)}`);
        const facts = parseFacts(taken.stdout);
        if (facts.one[`backup_count`] !== `${table} 3`)
          failures.push(`backup of ${show(db)} counted ${show(JSON.stringify(facts.one))}`);
        const restored = await onCanary(
          restoreScript(spec, id, { id: `${id}-safety`, time: "2026-01-01T00:00:01Z", releases: [] }),
          "sqlite restore",
        );
        if (restored.code !== 0 || parseFacts(restored.stdout).one["restored"] !== id)
          failures.push(`restore of ${show(db)}: exit ${restored.code} ${restored.stderr.slice(-400)}`);
        c.canary += 3;
        c.generated += 1;
        c.accepted += 1;
      }
      // 2. Retention: ids come back from the host's manifest (host data), then go into pruneScript.
      const ids = [
        ...new Set(
          fc
            .sample(hostileString({ maxParts: 4 }), { numRuns: 400, seed: SEED + 602 })
            .map((s) =>
              s
                .replace(/[\s/\0]/g, "")
                .replace(/[\ud800-\udfff]/g, "")
                .slice(0, 120),
            )
            // A file name (with ".sqlite.gz") must fit NAME_MAX, 255 bytes.
            .filter((s) => s.length > 0 && s !== "." && s !== ".." && Buffer.byteLength(s) <= 200),
        ),
      ].slice(0, 150);
      const dir = `${CANARY_DIR}/backups/manifest`;
      const spec = { backupsDir: dir, engine: "sqlite" as const };
      const manifest = ids.map((id) => `${id} ${"0".repeat(64)} 1 2026-01-01T00:00:00Z - -\n`).join("");
      const seedFiles = [
        "set -eu",
        `mkdir -p ${dir}`,
        putFile(`${dir}/manifest`, manifest, "600"),
        `cd ${dir} && python3 -c 'import base64,sys
for l in sys.stdin.read().split():
  open(base64.b64decode(l).decode()+".sqlite.gz","w").close()' <<'EOF'\n${ids.map((id) => Buffer.from(id).toString("base64")).join("\n")}\nEOF`,
        "",
      ].join("\n");
      await onCanaryOk(seedFiles, "manifest setup");
      const listed = parseFacts((await onCanaryOk(listScript(spec), "list")).stdout).all["backup"] ?? [];
      const listedIds = listed.map((l) => l.split(" ")[0]!);
      if (JSON.stringify(listedIds) !== JSON.stringify(ids))
        failures.push(`listScript read ${listedIds.length} of ${ids.length} ids back, or changed them`);
      const pruned = await onCanary(pruneScript(spec, ids), "prune");
      if (pruned.code !== 0) failures.push(`prune exited ${pruned.code}: ${pruned.stderr.slice(-400)}`);
      const deleted = parseFacts(pruned.stdout).all["deleted"] ?? [];
      for (const id of ids)
        if (!deleted.includes(id)) failures.push(`prune: deleted=${show(id)} missing (got ${deleted.length} lines)`);
      const left = await onCanaryOk(
        `cd ${dir} && ls -A | base64 -w0; echo; base64 -w0 < manifest; echo\n`,
        "left after prune",
      );
      const [files, rest] = left.stdout.split("\n");
      const leftFiles = decodeBase64(files).split("\n").filter(Boolean);
      if (leftFiles.join(",") !== ".lock,backup.log,manifest")
        failures.push(`prune left ${show(leftFiles.join(" | "))}`);
      if (decodeBase64(rest) !== "") failures.push(`prune left manifest lines ${show(decodeBase64(rest))}`);
      c.generated += ids.length;
      c.accepted += ids.length;
      c.canary += ids.length;
      assertNoFailures("backup builders", failures);
    });

    it("backups: accepted PostgreSQL user, database and password reach libpq byte-exact (fake server)", async () => {
      const c = count("canary: postgres connection (pgpass, env, restore -d)");
      const failures: string[] = [];
      const N = 40;
      const users = acceptedValues("backups.pg.postgres.user", N, SEED + 700);
      const dbs = acceptedValues("backups.pg.postgres.database", N, SEED + 701);
      const passwords = acceptedValues("dbPasswords.pg", N, SEED + 702);
      const cases = users.map((user, k) => ({
        engine: "postgres" as const,
        postgres: { host: "127.0.0.1", port: PORTS.pg, user, database: dbs[k]!, password: passwords[k]! },
      }));
      const scripts = cases.flatMap((target, k) => {
        const spec: BackupSetSpec = {
          backupsDir: `${CANARY_DIR}/pg/b${k}`,
          engine: "postgres",
          target,
          verifyTables: [],
        };
        // The restore's connection, as restoreScript builds it, against a dump the fake cannot serve.
        const restore = [
          "set -u",
          `T=$(mktemp -d); tailof() { :; }`,
          ...connectionEnv(target),
          `cp ${CANARY_DIR}/pg/empty.dump "$T/x.dump"`,
          ...restoreLines(target, `"$T/x.dump"`),
          "",
        ].join("\n");
        return [backupScript(spec, { id: `pg${k}-20260101T000000Z-none`, time: "t", releases: [] }), restore];
      });
      const driver = [
        `: > ${CANARY_DIR}/pg.log; mkdir -p ${CANARY_DIR}/pg`,
        // A valid, empty custom-format archive, so pg_restore gets as far as connecting.
        putFile(`${CANARY_DIR}/pg/empty.dump`, emptyPgArchive()),
        // Each script's connections, then a separator: a script that never connected leaves an empty group.
        ...scripts.map(
          (s) =>
            `printf '%s' ${Buffer.from(s).toString("base64")} | base64 -d > ${CANARY_DIR}/pg/s.sh; sh ${CANARY_DIR}/pg/s.sh </dev/null >/dev/null 2>&1 || true; echo '{"sep":1}' >> ${CANARY_DIR}/pg.log`,
        ),
        `base64 -w0 < ${CANARY_DIR}/pg.log`,
        "",
      ].join("\n");
      const r = await onCanaryOk(driver, "postgres batch", 180_000);
      const groups: { user: string; database: string; password: string }[][] = [[]];
      for (const l of decodeBase64(r.stdout.trim()).split("\n").filter(Boolean)) {
        const x = JSON.parse(l) as Record<string, string>;
        if (x["sep"]) groups.push([]);
        else
          groups[groups.length - 1]!.push({
            user: decodeBase64(x["user"]),
            database: decodeBase64(x["database"]),
            password: decodeBase64(x["password"]),
          });
      }
      cases.forEach((t, k) => {
        for (const [what, got] of [
          ["pg_dump", groups[2 * k]],
          ["pg_restore", groups[2 * k + 1]],
        ] as const) {
          const want = { user: t.postgres.user, database: t.postgres.database, password: t.postgres.password };
          if (got?.length !== 1 || JSON.stringify(got[0]) !== JSON.stringify(want))
            failures.push(
              `${what}: sent ${show(JSON.stringify(got ?? null))}, config said ${show(JSON.stringify(want))}`,
            );
        }
      });
      c.generated += N * 3;
      c.accepted += N * 3;
      c.canary += N * 3;
      assertNoFailures("postgres connection", failures);
    });

    it("machine images: accepted provision env values and script names run as data", async () => {
      const c = count("canary: provision script");
      const failures: string[] = [];
      // The whole environment must fit one exec (ARG_MAX, 2 MiB here): the values stop at 900 kB.
      let total = 0;
      const envValues = acceptedValues("images.golden.provision.env.ROLE", 300, SEED + 800).filter(
        (v) => (total += Buffer.byteLength(v) + 8) < 900_000,
      );
      const env = Object.fromEntries(envValues.map((v, k) => [`P${k}`, v]));
      const run = [
        ...new Set(acceptedValues("images.golden.provision.run.0", 20, SEED + 801, { filter: (p) => p.length < 150 })),
      ].filter((p, _, all) => !all.some((q) => q !== p && (q.startsWith(p + "/") || p.startsWith(q + "/"))));
      const dir = `${CANARY_DIR}/provision`;
      const out = `${OUT}/provision`;
      const src = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-provision-"));
      try {
        run.forEach((p, k) => {
          fs.mkdirSync(path.dirname(path.join(src, p)), { recursive: true });
          fs.writeFileSync(
            path.join(src, p),
            `#!/bin/sh\nenv -0 > ${out}/env${k}\nprintf '%s' "$0" > ${out}/argv${k}\n`,
          );
        });
        const tarball = execFileSync("tar", ["-czf", "-", "-C", src, "."]);
        // IMAGE_MARKER lives in /etc; on a shared test server the record goes to the sandbox instead.
        const script = provisionScript({ run, env, imageName: "canary", contentHash: "h", dir })
          .split(IMAGE_MARKER)
          .join(`${CANARY_DIR}/image-marker/image`);
        const r = await onCanary(
          [
            `mkdir -p ${out} ${dir} ${CANARY_DIR}/image-marker && printf '%s' ${tarball.toString("base64")} | base64 -d | tar -xzf - -C ${dir}`,
            `printf '%s' ${Buffer.from(script).toString("base64")} | base64 -d > ${CANARY_DIR}/prov.sh && sh ${CANARY_DIR}/prov.sh </dev/null`,
            `rc=$?; echo "rc=$rc"; ${dumpDir(out)}`,
            "",
          ].join("\n"),
          "provision",
        );
        if (parseFacts(r.stdout).one["rc"] !== "0") failures.push(`provision failed: ${r.stderr.slice(-600)}`);
        const ran = parseFacts(r.stdout).all["ran"] ?? [];
        const files = parseDump(r.stdout);
        run.forEach((p, k) => {
          if (!ran.includes(p)) failures.push(`ran=${show(p)} missing`);
          if (decodeBase64(files[`argv${k}`]) !== `./${p}`)
            failures.push(`script ${show(p)} ran as ${show(decodeBase64(files[`argv${k}`]))}`);
          const got = files[`env${k}`] ? envOf(files[`env${k}`]!) : {};
          for (const [key, v] of Object.entries(env))
            if (got[key] !== v) failures.push(`${p}: ${key} = ${show(v)} arrived as ${show(got[key] ?? "<unset>")}`);
        });
      } finally {
        fs.rmSync(src, { recursive: true, force: true });
      }
      c.generated += envValues.length + run.length;
      c.accepted += envValues.length + run.length;
      c.canary += envValues.length + run.length;
      assertNoFailures("provision", failures);
    });
  });

  // Last (mocha runs a suite's own tests before its nested suites): what actually ran.
  describe("totals", () => {
    it(`ran at least ${MIN_TOTAL} generated cases through validation and ${MIN_TOTAL} on the canary`, () => {
      let validation = 0;
      let canary = 0;
      const lines: string[] = [];
      for (const [target, c] of [...counts.entries()].sort()) {
        if (target.startsWith("validation: ")) validation += c.generated;
        canary += c.canary;
        const trusted = CONFIG_TARGETS.find((t) => `validation: ${t.field}` === target)?.trusted;
        lines.push(
          `      ${target}: ${c.generated} generated, ${c.accepted} accepted${c.canary ? `, ${c.canary} run on the canary` : ""}${trusted ? ` (${trusted})` : ""}`,
        );
      }
      console.log(lines.join("\n"));
      console.log(
        `    total: ${validation} validation cases, ${canary} canary cases, ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${SEED})`,
      );
      assert.ok(validation >= MIN_TOTAL, `only ${validation} validation cases ran`);
      assert.ok(canary >= MIN_TOTAL, `only ${canary} canary cases ran`);
    });
  });
});
