import { strict as assert } from "assert";
import { generateEd25519 } from "../../transport/keys";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as path from "path";
import { shippedProvider } from "../../providers/ship";
import { evidence } from "../../providers/service/gate";
import { redact } from "../../transport/redact";
import type { SshConnection } from "../../transport/connection";
import {
  connectionFor,
  loadInventory,
  postgres,
  sh,
  sshRun,
  superuserPsql,
  testHost,
  type PostgresServer,
  type TestHost,
} from "../support/fleet";
import { GitApp } from "../support/git-app";
import { ProviderError, ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";
import {
  ProcessSampler,
  collectFiles,
  describeHits,
  journalEntries,
  needle,
  privateKeyNeedle,
  scramVerifier,
  search,
  strictUrlEncode,
  type Hit,
  type Needle,
  type RemoteFile,
  type Samples,
} from "./support/secrets-sweep";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const backupProvider = shippedProvider("backup");

/**
 * Secrets sweep (issue #10): four secrets made for this run only (an SSH key authorized on web2
 * for the run, a PostgreSQL role's password, a secretEnv value, a webhook URL's token) go
 * through a whole cycle through Pulumi's provider host: backup → deploy (migration) → a failed
 * deploy that migrates, leaks its secrets in its own logs and health body, and is rolled back
 * with the database restored → backup → a failed backup → restore → a refused restore → a
 * good deploy → manual rollback → refresh → a refused login → destroy. Then every place a
 * secret could have gone is searched, in every encoding it could have taken there.
 *
 * The secret values carry `"`, `\`, `'`, `$`, `:`, `/` and `@`: each of them changes the value's
 * JSON, URL, shell and systemd forms, so a redaction that only knows the raw value shows up.
 * The role gets its password as a SCRAM verifier made here: the plain password never reaches
 * the db server from this test, so any trace of it there came from fleet.
 */

const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const ROOT = "/srv/fleet-secrets";
const HOST = "web2";
const PORT = 18870;
/** Nothing listens here: a notification target that cannot be reached. */
const DEAD_PORT = 18879;
const TAG = randomBytes(4).toString("hex");
const SVC = `fsec-${TAG}`;
const BACKUP_SET = `fsecdb-${TAG}`;
const BACKUPS = `${ROOT}/${BACKUP_SET}/backups`;
const ROLE = `fsec_${TAG}`;
const DB = ROLE;
const core = () => randomBytes(12).toString("hex");
const ENV_CORE = core();
const DB_CORE = core();
const HOOK_CORE = core();
const APP_SECRET = `EnvS3cret-${ENV_CORE}-"dq\\bs'sq$dollar/sl:co@at`;
const DB_PASSWORD = `DbPw-${DB_CORE}-"dq\\bs'sq$dollar/sl:co@at`;
const HOOK_TOKEN = `Hook${HOOK_CORE}`;
const KEY_COMMENT = `fleet-secrets-${TAG}`;

/** Files that must hold the secret env (and nothing else on the servers may), mode 0600. */
const SECRET_FILES = [`${ROOT}/${SVC}/shared/env`, `${ROOT}/${SVC}/.rollback/env`];

/**
 * The failing release: it prints its secrets at start (raw, in a database URL with the password
 * percent-encoded, and as a JSON log line) and answers its health check with them in a JSON
 * body. The app's own output is the app's business; what fleet does with it (error evidence,
 * notifications, Pulumi logs) is what this test checks.
 */
const LEAKY_APP = String.raw`
import json, os, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
HOST, PORT = os.environ["APP_HOST"], int(os.environ["APP_PORT"])
pw, token = os.environ["DB_PASSWORD"], os.environ["APP_SECRET"]
url = "postgresql://%s:%s@%s/%s" % (os.environ["PGUSER"], urllib.parse.quote(pw, safe=""), os.environ["PGHOST"], os.environ["PGDATABASE"])
print("raw config: password=" + pw + " token=" + token, flush=True)
print("connecting to " + url, flush=True)
print(json.dumps({"event": "config", "password": pw, "token": token}), flush=True)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "broken", "database": url, "password": pw, "token": token}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
`;

interface Received {
  readonly path: string;
  readonly body: string;
}

/** A webhook receiver on loopback; `/fail/…` answers 500 (a failing target only warns). */
async function receiver(): Promise<{ base: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(req.url?.startsWith("/fail/") ? 500 : 200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const psql = (sql: string, database = DB): Promise<string> => superuserPsql(sql, database);

/** What a thrown error shows anywhere: its message, the engine's message, the host output tail. */
function errorText(e: unknown): string {
  if (e instanceof ProviderError) return [e.message, e.engineMessage, e.hostLogTail, e.stack ?? ""].join("\n");
  return e instanceof Error ? `${e.message}\n${e.stack ?? ""}` : String(e);
}

describe("faults: secrets sweep (web2 + db, through Pulumi's provider host)", function () {
  this.timeout(300_000);

  const pair = generateEd25519(KEY_COMMENT);
  let pg: PostgresServer;
  let web2: TestHost;
  let dbHost: TestHost;
  let connection: SshConnection;
  before(() => {
    pg = postgres();
    web2 = testHost(HOST);
    dbHost = testHost("db");
    connection = { ...connectionFor(HOST), privateKey: pair.private };
  });
  const needles: Needle[] = [
    privateKeyNeedle("the SSH private key", pair.private),
    needle("the DB password", DB_PASSWORD, DB_CORE),
    needle("the secretEnv value", APP_SECRET, ENV_CORE),
    needle("the webhook token", HOOK_TOKEN, HOOK_CORE),
  ];
  const app = new GitApp(PYAPP);

  let host: ProviderHost;
  let service: SimulatedResource;
  let backup: SimulatedResource;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let samplers: ProcessSampler[] = [];
  let samples: Samples[] = [];
  let startedAt = 0;
  let cycleMs = 0;
  /** Every checkpoint the engine would have written, and every error a user would have seen. */
  const checkpoints: { step: string; json: string }[] = [];
  const outputs: { step: string; outputs: Props; secretKeys: string[] }[] = [];
  const errors: { step: string; text: string }[] = [];
  let cycleDone = false;

  const backupSpec = (over: Partial<Record<string, unknown>> = {}) => ({
    name: BACKUP_SET,
    connection,
    engine: "postgres",
    postgres: { host: pg.host, port: pg.port, database: DB, user: ROLE, password: DB_PASSWORD },
    backupsDir: BACKUPS,
    keep: 10,
    keepDays: 0,
    protectReleases: [] as string[],
    verifyTables: ["items"],
    releases: [] as string[],
    trigger: "",
    restore: "",
    stepTimeoutMs: 60_000,
    deleteBackupsOnDestroy: true,
    ...over,
  });
  /** As DatabaseBackup registers it: the connection and the password secret, nothing else. */
  const backupInputs = (spec: ReturnType<typeof backupSpec>): Props => ({
    ...spec,
    connection: secret(spec.connection),
    postgres: { ...spec.postgres, password: secret(spec.postgres.password) },
  });
  const hookUrl = () => `${hook.base}/hooks/${HOOK_TOKEN}`;
  /** As Service registers it: connection, secretEnv, notify and restoreOnRollback secret. */
  const serviceCase = (
    restore: { spec: ReturnType<typeof backupSpec>; id: string },
    opts: { ref?: string; pinned?: boolean; connection?: SshConnection } = {},
  ): Props => ({
    ...serviceInputs({
      name: SVC,
      connection: opts.connection ?? connection,
      root: ROOT,
      source: { git: app.dir, ref: opts.ref ?? "main" },
      start: "python3 app.py",
      migrate: "psql -X -q -v ON_ERROR_STOP=1 -c \"INSERT INTO items (name) VALUES ('migrated-' || '$FLEET_RELEASE')\"",
      env: { APP_HOST: connection.host, APP_PORT: String(PORT), PGHOST: pg.host, PGUSER: ROLE, PGDATABASE: DB },
      // The migration's psql reads PGPASSWORD; the app reads DB_PASSWORD.
      secretEnv: { APP_SECRET, DB_PASSWORD, PGPASSWORD: DB_PASSWORD },
      health: {
        url: `http://${connection.host}:${PORT}/api/health`,
        version: { url: `http://${connection.host}:${PORT}/api/version`, field: "commit" },
        timeout: "5s",
        interval: "100ms",
      },
      keepReleases: 5,
    }),
    notify: secret([
      { kind: "webhook", url: hookUrl() },
      { kind: "slack", url: `${hook.base}/fail/${HOOK_TOKEN}` },
      { kind: "discord", url: `http://127.0.0.1:${DEAD_PORT}/api/webhooks/${HOOK_TOKEN}` },
    ]),
    restoreOnRollback: secret({ backup: restore.spec, backupId: restore.id }),
    ...(opts.pinned ? { pinned: true } : {}),
  });

  function record(step: string): void {
    for (const r of [service, backup]) {
      checkpoints.push({ step: `${step} (${r.urn})`, json: r.plainStateJson() });
      const s = r.state;
      if (s) outputs.push({ step: `${step} (${r.urn})`, outputs: s.outputs, secretKeys: s.secretOutputKeys });
    }
  }

  /** Runs a step that must fail; keeps what the user would see. */
  async function failing(step: string, run: Promise<unknown>, expect: RegExp): Promise<void> {
    let failed: unknown;
    await run.then(
      () => undefined,
      (e: unknown) => (failed = e),
    );
    assert.ok(failed, `${step}: expected a failure`);
    const text = errorText(failed);
    errors.push({ step, text });
    assert.match(text, expect, `${step}: not the expected failure`);
    record(step);
  }

  async function takeBackup(step: string, over: Partial<Record<string, unknown>>) {
    const spec = backupSpec(over);
    const r = await backup.up(backupInputs(spec));
    record(step);
    return { spec, id: String(r.state!.plainOutputs["latestId"]) };
  }

  const served = async () =>
    ((await (await fetch(`http://${connection.host}:${PORT}/api/version`)).json()) as { commit: string }).commit;
  const items = () => psql("SELECT name FROM items ORDER BY id");

  before(async function () {
    this.timeout(120_000);
    loadInventory();
    await sh(
      HOST,
      // Also what an interrupted earlier run left (other tags): only this file's units.
      `for f in /etc/systemd/system/fsec-*.service; do [ -e "$f" ] || continue; u=$(basename "$f" .service); ` +
        `systemctl disable --now "$u" 2>/dev/null; rm -f "$f"; done; systemctl daemon-reload; rm -rf ${ROOT}`,
    );
    // The fresh key may log in as root on web2 for this run only (removed in after()).
    await sh(HOST, `umask 077; mkdir -p /root/.ssh; cat >> /root/.ssh/authorized_keys`, `${pair.public.trim()}\n`);
    await psql(
      `CREATE ROLE ${ROLE} LOGIN PASSWORD '${scramVerifier(DB_PASSWORD)}'; CREATE DATABASE ${DB} OWNER ${ROLE};`,
      "postgres",
    );
    await psql(
      `SET ROLE ${ROLE}; CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) VALUES ('first'), ('second');`,
    );
    hook = await receiver();
    host = await ProviderHost.start();
    service = new SimulatedResource(host, serviceProvider, {
      name: SVC,
      additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"],
    });
    backup = new SimulatedResource(host, backupProvider, {
      name: BACKUP_SET,
      additionalSecretOutputs: ["connection"],
    });
  });

  after(async function () {
    this.timeout(120_000);
    await Promise.all(samplers.map((s) => s.stop().catch(() => undefined)));
    await service?.destroy().catch(() => undefined);
    await backup?.destroy().catch(() => undefined);
    await host?.stop();
    await hook?.close();
    await sshRun(
      HOST,
      `grep -vF ${KEY_COMMENT} /root/.ssh/authorized_keys > /root/.ssh/authorized_keys.fsec; ` +
        `cat /root/.ssh/authorized_keys.fsec > /root/.ssh/authorized_keys; rm -f /root/.ssh/authorized_keys.fsec; ` +
        `systemctl disable --now ${SVC} 2>/dev/null; rm -f /etc/systemd/system/${SVC}.service; systemctl daemon-reload; rm -rf ${ROOT}`,
    );
    await psql(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE); DROP ROLE IF EXISTS ${ROLE};`, "postgres").catch((e) =>
      console.error(`cleanup: ${(e as Error).message}`),
    );
    // The run's key must not outlive it.
    assert.equal(await sh(HOST, `grep -cF ${KEY_COMMENT} /root/.ssh/authorized_keys || true`), "0");
  });

  describe("redaction (pure): the forms fleet itself produces", () => {
    it("redact() removes a secret's raw, JSON-escaped and URL-encoded forms, line by line for keys", () => {
      const text = [
        `raw ${DB_PASSWORD}`,
        `json ${JSON.stringify({ p: DB_PASSWORD })}`,
        `url postgresql://u:${encodeURIComponent(DB_PASSWORD)}@h/db`,
        `url2 postgresql://u:${strictUrlEncode(DB_PASSWORD)}@h/db`,
        `key ${pair.private}`,
      ].join("\n");
      const out = redact(text, [DB_PASSWORD, pair.private]);
      const hits = search(needles, "redact() output", out);
      assert.deepEqual(hits, [], `redact() left:\n${describeHits(hits)}`);
      assert.match(
        out,
        /^raw \[secret\]\njson \{"p":"\[secret\]"\}\nurl postgresql:\/\/u:\[secret\]@h\/db\nurl2 postgresql:\/\/u:\[secret\]@h\/db\nkey \[secret\]/,
      );
    });

    it("the health evidence redacts a JSON body before quoting it (a quoted secret is escaped twice)", () => {
      const body = JSON.stringify({ password: DB_PASSWORD, token: APP_SECRET });
      const text = evidence(
        {
          result: "timeout",
          status: "500",
          body,
          curlError: "",
          versionBody: body,
          active: "active",
          journal: `${DB_PASSWORD}\n${body}`,
        },
        [DB_PASSWORD, APP_SECRET],
      );
      const hits = search(needles, "evidence()", text);
      assert.deepEqual(hits, [], `evidence() left:\n${describeHits(hits)}`);
      assert.match(text, /last response: HTTP 500 .*\[secret\]/);
    });

    it("a secret cut by the evidence's length limit is not half left in it", () => {
      const body = `${"x".repeat(480)}${APP_SECRET}`;
      const text = evidence({ result: "timeout", status: "500", body, curlError: "", active: "", journal: "" }, [
        APP_SECRET,
      ]);
      assert.ok(!text.includes(ENV_CORE.slice(0, 8)), `a prefix of the secret is left:\n${text}`);
    });
  });

  describe("the cycle, then the search", () => {
    it("runs the whole cycle: backup, deploy, failed deploy rolled back with restore, backups, restores, rollback, refresh", async () => {
      startedAt = Math.floor(Date.now() / 1000) - 1;
      samplers = [
        ProcessSampler.start(HOST, web2.container, TAG, [ROOT]),
        ProcessSampler.start("db", dbHost.container, TAG),
        // The deploying machine too: the provider host and anything it starts (git, tar).
        ProcessSampler.start("this machine", undefined, `${TAG}-local`),
      ];
      await new Promise((r) => setTimeout(r, 500)); // the samplers are up before fleet starts

      // 1–2. A backup, then the first release (its migration writes with the secret password).
      const r1 = app.head();
      const release = (sha: string) => sha.slice(0, 12);
      let point = await takeBackup("backup before R1", { releases: [release(r1)] });
      await service.up(serviceCase(point));
      record("deploy R1");
      assert.equal(await served(), r1);
      assert.deepEqual((await items()).split("\n"), ["first", "second", `migrated-${release(r1)}`]);
      const rowsAfterR1 = await items();

      // 3. The leaky release: it migrates, fails its gate, is rolled back with the database restored.
      const r2 = app.commit("leaky release", { "app.py": LEAKY_APP });
      point = await takeBackup("backup before R2", { releases: [release(r2)] });
      await failing(
        "deploy R2 (fails its health gate)",
        service.up(serviceCase(point)),
        /failed its health gate[\s\S]*Rolled back automatically[\s\S]*The database was restored from the pre-deploy backup/,
      );
      assert.equal(await served(), r1, "R1 serves again");
      assert.equal(await items(), rowsAfterR1, "the migration of R2 was undone by the restore");

      // 4–7. A backup, a backup that fails verification, a restore, a restore of a backup that does not exist.
      const b3 = await takeBackup("backup after the rollback", { trigger: "after-rollback" });
      await failing(
        "backup failing verification",
        backup.up(backupInputs(backupSpec({ trigger: "bad", verifyTables: ["items", "missing_table"] }))),
        /failed verification/,
      );
      await psql("DELETE FROM items WHERE name = 'second'");
      await takeBackup("restore", { trigger: "after-rollback", restore: b3.id });
      assert.equal(await items(), rowsAfterR1, "the restore gave the rows back");
      await failing(
        "restore of a backup that does not exist",
        backup.up(backupInputs(backupSpec({ trigger: "after-rollback", restore: `${BACKUP_SET}-20000101T000000Z-x` }))),
        /no such verified backup/,
      );

      // 8–9. A good release, then a manual rollback to R1 (a retained release: switch only).
      const r3 = app.commit("fixed", { "app.py": fs.readFileSync(path.join(PYAPP, "app.py"), "utf8") });
      point = await takeBackup("backup before R3", { releases: [release(r3)] });
      await service.up(serviceCase(point));
      record("deploy R3");
      assert.equal(await served(), r3);
      const pinned = await service.up(serviceCase(point, { ref: r1, pinned: true }));
      record("manual rollback to R1");
      assert.equal(pinned.op, "update");
      assert.equal(await served(), r1);

      // 10. Refresh both, as `pulumi refresh` would.
      await service.refresh();
      await backup.refresh();
      record("refresh");

      // Inputs that check refuses (at preview): the failures name the field, never its value.
      const bad = serviceCase(point);
      await failing(
        "preview refused by the service's check",
        service.preview({ ...bad, secretEnv: secret({ "BAD-KEY": APP_SECRET, FLEET_X: DB_PASSWORD }) }),
        /secretEnv\.BAD-KEY: environment variable names[\s\S]*secretEnv\.FLEET_X: FLEET_\* variables are set by fleet/,
      );
      await failing(
        "preview refused by the backup's check",
        backup.preview({
          ...backupInputs(backupSpec()),
          postgres: { host: pg.host, port: pg.port, database: DB, user: ROLE, password: secret(`${DB_PASSWORD}\nx`) },
        }),
        /postgres\.password: must be a single line/,
      );

      // 11. The same key for a user that does not accept it: a refused login.
      const refused = new SimulatedResource(host, serviceProvider, {
        name: `${SVC}-refused`,
        additionalSecretOutputs: ["connection", "secretEnv", "notify", "restoreOnRollback"],
      });
      await failing(
        "login refused",
        refused.up(serviceCase(point, { connection: { ...connection, user: "nobody" } })),
        /authentication failed for user "nobody"/,
      );
      checkpoints.push({ step: "login refused (its own resource)", json: refused.plainStateJson() });

      cycleMs = Date.now() - startedAt * 1000;
      samples = await Promise.all(samplers.map((s) => s.stop()));
      samplers = [];
      // The announcements happened (what they said is searched below).
      const events = hook.received.filter((r) => r.path.startsWith("/hooks/")).map((r) => JSON.parse(r.body).event);
      assert.deepEqual(events, ["success", "rollback", "success", "success", "failure"]);
      cycleDone = true;
    });

    it("the samplers ran during the whole cycle and saw fleet's processes", () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      for (const s of samples) {
        const every = cycleMs / Math.max(1, s.samples);
        console.log(
          `      (${s.server}: ${s.samples} samples in ${(cycleMs / 1000).toFixed(1)} s, one every ${every.toFixed(0)} ms)`,
        );
        assert.ok(every <= 150, `${s.server}: only ${s.samples} process samples in ${cycleMs} ms`);
      }
      const w = samples.find((s) => s.server === HOST)!;
      const d = samples.find((s) => s.server === "db")!;
      const local = samples.find((s) => s.server === "this machine")!;
      assert.ok(local.processes.includes("dynamic-provider/index.js"), "this machine's samples show the provider host");
      assert.ok(w.processes.includes("/bin/sh -s"), "web2's samples show fleet's script shell");
      assert.ok(w.appEnvSeen > 0, "web2's samples read the app's environment (left out by design)");
      assert.ok(d.processes.includes(`postgres: 15/main: ${ROLE}`), "db's samples show the role's sessions");
      assert.ok(
        w.files.some((f) => f.path === `${ROOT}/${SVC}/shared/env`),
        "web2's samples saw the files under the root",
      );
    });

    it(`no secret in any process's argv or environment on ${HOST}, db or this machine (sampled every ~50 ms)`, () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      const hits = samples.flatMap((s) =>
        search(needles, `${s.server} process samples (ps -eo args, /proc/*/environ)`, s.processes),
      );
      assert.deepEqual(hits, [], `secrets in process lists:\n${describeHits(hits)}`);
    });

    it(`every file under ${ROOT} that held a secret at any moment was 0600 and one that must (env, its temp, .migrate-env, pgpass)`, () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      const w = samples.find((s) => s.server === HOST)!;
      const allowed = [
        new RegExp(`^${ROOT}/${SVC}/shared/env(\\.fleet-tmp)?$`),
        new RegExp(`^${ROOT}/${SVC}/\\.rollback/env$`),
        new RegExp(`^${ROOT}/${SVC}/\\.migrate-env$`),
        new RegExp(`^${BACKUPS}/\\.tmp-[A-Za-z0-9]+/pgpass$`),
      ];
      const holders = w.files.filter((f) => search(needles, f.path, f.content).length > 0);
      const wrong = holders.filter((f) => !allowed.some((re) => re.test(f.path)) || f.mode !== "600");
      assert.deepEqual(
        wrong.map((f) => `${f.path} (mode ${f.mode})`),
        [],
        `secret-bearing files seen during the run that are not expected, or not 0600:\n${wrong
          .map((f) => describeHits(search(needles, `${f.path} (mode ${f.mode})`, f.content)))
          .join("\n")}`,
      );
      assert.ok(
        holders.some((f) => f.path.endsWith("/shared/env")),
        "the search sees the env file's secrets (the check can fail)",
      );
      console.log(
        `      (${w.files.length} file versions sampled; secret holders: ${[...new Set(holders.map((f) => f.path.replace(ROOT, "<root>")))].join(", ")})`,
      );
    });

    it("no secret in Pulumi state (every checkpoint, secrets encrypted) nor in plain outputs", () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      const hits: Hit[] = [];
      for (const c of checkpoints) hits.push(...search(needles, `plain state after "${c.step}"`, c.json));
      for (const o of outputs) {
        // What `pulumi stack output` and the console show: the outputs that are not secret.
        const plain = Object.fromEntries(Object.entries(o.outputs).filter(([k]) => !o.secretKeys.includes(k)));
        hits.push(...search(needles, `non-secret outputs after "${o.step}"`, JSON.stringify(plain)));
      }
      assert.deepEqual(hits, [], `secrets in Pulumi state:\n${describeHits(hits)}`);
      console.log(`      (${checkpoints.length} checkpoints and ${outputs.length} output sets searched)`);
      assert.ok(checkpoints.length >= 20, `${checkpoints.length} checkpoints searched`);
      const svc = outputs.filter((o) => o.step.includes(`::${SVC}`)).at(-1)!;
      assert.deepEqual(
        ["connection", "notify", "restoreOnRollback", "secretEnv"].filter((k) => !svc.secretKeys.includes(k)),
        [],
        "the service's secret-bearing outputs are secret",
      );
    });

    it("no secret in any error a user saw", () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      assert.equal(errors.length, 6);
      const hits = errors.flatMap((e) => search(needles, `the error of "${e.step}"`, e.text));
      assert.deepEqual(hits, [], `secrets in errors:\n${describeHits(hits)}`);
    });

    it("no secret in the provider host's output (warnings of failed notifications included)", () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      const logs = host.logs();
      assert.match(
        logs,
        /warning: slack notification for .* failed: HTTP 500/,
        "the failing target's warning is there",
      );
      assert.match(logs, /warning: discord notification for .* failed/, "the unreachable target's warning is there");
      const hits = search(needles, "the provider host's output", logs);
      assert.deepEqual(hits, [], `secrets in the provider host's output:\n${describeHits(hits)}`);
    });

    it("no secret in any notification body (the token is only in the URL it was sent to)", () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      assert.ok(hook.received.length >= 7, `${hook.received.length} notifications`);
      const rollback = hook.received.find((r) => r.body.includes('"rollback"'))!;
      assert.match(rollback.body, /Rolled back automatically/, "the rollback's evidence is in the message");
      const hits = hook.received.flatMap((r, i) => search(needles, `notification #${i + 1} body`, r.body));
      console.log(`      (${hook.received.length} notification bodies searched)`);
      assert.deepEqual(hits, [], `secrets in notifications:\n${describeHits(hits)}`);
    });

    it(`on ${HOST}: only shared/env and .rollback/env hold a secret, both 0600; deploy.log, backup.log, backups, units, /tmp, logs hold none`, async () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      const files = await collectFiles(
        web2.container,
        [ROOT, "/etc/systemd/system", "/tmp", "/var/tmp", "/root", "/home", "/var/log", "/run", "/etc/fleet"],
        ["/var/log/journal", "/run/log/journal", "/run/systemd/journal"],
      );
      const byPath = new Map(files.map((f) => [f.path, f]));
      for (const p of [`${ROOT}/${SVC}/deploy.log`, `${BACKUPS}/backup.log`, `${BACKUPS}/manifest`]) {
        assert.ok(byPath.has(p), `${p} was searched`);
      }
      const dumps = files.filter((f) => f.path.startsWith(BACKUPS) && f.path.endsWith(".dump"));
      assert.ok(dumps.length >= 5, `${dumps.length} backups searched`);
      for (const p of SECRET_FILES) {
        const f: RemoteFile | undefined = byPath.get(p);
        assert.ok(f, `${p} exists`);
        assert.equal(f.mode, "600", `${p} holds secrets: mode 0600`);
        // The search works: the file that must hold the secret env is found to hold it.
        assert.ok(search(needles, p, f.content).some((h) => h.needle === "the secretEnv value"));
      }
      console.log(
        `      (${files.length} files on ${HOST} searched, ${files.filter((f) => f.path.startsWith(ROOT)).length} under ${ROOT})`,
      );
      const hits = files
        .filter((f) => !SECRET_FILES.includes(f.path))
        .flatMap((f) => search(needles, `${HOST}:${f.path} (mode ${f.mode})`, f.content));
      assert.deepEqual(hits, [], `secrets in files on ${HOST}:\n${describeHits(hits)}`);
    });

    it(`no secret in the journals of ${HOST} and db since the run began (the app's own stdout left out)`, async () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      const [w, d] = await Promise.all([
        journalEntries(web2.container, startedAt, SVC),
        journalEntries(dbHost.container, startedAt),
      ]);
      assert.ok(
        w.some((e) => e.includes(`fleet service ${SVC}`)),
        "web2's journal has systemd's lines about the service",
      );
      console.log(`      (${w.length} journal entries on ${HOST}, ${d.length} on db searched)`);
      const hits = [
        ...w.flatMap((e, i) => search(needles, `${HOST} journal entry #${i}`, e)),
        ...d.flatMap((e, i) => search(needles, `db journal entry #${i}`, e)),
      ];
      assert.deepEqual(hits, [], `secrets in journals:\n${describeHits(hits)}`);
    });

    it("on db: no secret in its logs (PostgreSQL's included), /tmp or /root", async () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      const files = await collectFiles(
        dbHost.container,
        ["/var/log", "/tmp", "/var/tmp", "/root", "/run"],
        ["/var/log/journal", "/run/log/journal"],
      );
      assert.ok(
        files.some((f) => f.path.startsWith("/var/log/postgresql/")),
        "PostgreSQL's log was searched",
      );
      console.log(`      (${files.length} files on db searched)`);
      const hits = files.flatMap((f) => search(needles, `db:${f.path}`, f.content));
      assert.deepEqual(hits, [], `secrets in files on db:\n${describeHits(hits)}`);
    });

    it("destroy removes the service and the backups, and logs no secret either", async () => {
      assert.ok(cycleDone, "the cycle did not complete (see the test above): nothing complete to search");
      host.clearLogs();
      await service.destroy();
      await backup.destroy();
      assert.equal(await sh(HOST, `test -e ${ROOT}/${SVC} || test -e ${BACKUPS} && echo left || echo gone`), "gone");
      const hits = [
        ...search(needles, "the provider host's output during destroy", host.logs()),
        ...search(needles, "service state after destroy", service.plainStateJson()),
        ...search(needles, "backup state after destroy", backup.plainStateJson()),
      ];
      assert.deepEqual(hits, [], describeHits(hits));
    });
  });
});
