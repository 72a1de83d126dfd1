import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import {
  listHistory,
  missingReleases,
  pinsForVersion,
  readCurrentReleases,
  readJsonFile,
  serviceReleases,
  type HistoryEntry,
} from "../../rollback/history";
import {
  historyTable,
  parseRollbackArgs,
  pinOneService,
  pulumiCommands,
  type RollbackArgs,
} from "../../rollback/commands";

/**
 * The file backend the real CLI wrote in test/engine/history.test.ts (refreshed by `npm run
 * fixtures:history`; only the bundled provider's code is elided): four updates of stack
 * fleet/engine-history. API runs on web1, web2 and web3 (one resource per host), WEB on web3:
 * 1 API A, WEB A; 2 API B; 3 API's next release failed its health gate (a failed update, B kept);
 * 4 API C, WEB W2. API keeps 2 releases, so after update 4 its hosts keep C and B, not A.
 */
const BACKEND = path.resolve(__dirname, "..", "fixtures", "backend");
const STACK = "engine-history";
const HISTORY = path.join(BACKEND, ".pulumi", "history", "fleet", STACK);
const API = "eng-hist-api";
const WEB = "eng-hist-web";
const HOSTS = { web1: "127.0.0.11", web2: "127.0.0.12", web3: "127.0.0.13" } as const;
const A = { releaseId: "7952cbe121fb", commit: "7952cbe121fb00f88cce688b4a0ca2715bc52290" };
const B = { releaseId: "e3b293254524", commit: "e3b2932545242cc370e658708b1c9940409ce142" };
const C = { releaseId: "691049b6062d", commit: "691049b6062d222c8acf948af9d61109a8805c4f" };
const W2 = { releaseId: "a5c960d17de3", commit: "a5c960d17de35f58a8634ba13420edb15e263858" };
/** The fleet commit the CLI recorded as `git.head` (the project folder's HEAD when it ran). */
const FLEET_HEAD = "6550a8a4d7396bc1ace18682ef49304566e549cb";

const history = (dir = BACKEND) => listHistory(dir, "fleet", STACK);
/** Per host, the release of a service in an update. */
const perHost = (e: HistoryEntry, service: string) =>
  serviceReleases(e.releases, service).map((r) => [r.hostName ?? "-", r.address, r.releaseId]);
const apiOn = (release: { releaseId: string }) =>
  Object.entries(HOSTS).map(([h, address]) => [h, address, release.releaseId]);

function copyBackend(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-rb-"));
  fs.cpSync(BACKEND, dir, { recursive: true });
  return dir;
}

describe("rollback: reading a file backend's history (files the real CLI wrote)", () => {
  it("lists the updates oldest first, numbered 1… (the files all say version 0), with every copy's release", () => {
    const entries = history();
    assert.deepEqual(
      entries.map((e) => [e.version, e.storedVersion, e.kind, e.result, e.gitHead]),
      [
        [1, 0, "update", "succeeded", FLEET_HEAD],
        [2, 0, "update", "succeeded", FLEET_HEAD],
        [3, 0, "update", "failed", FLEET_HEAD],
        [4, 0, "update", "succeeded", FLEET_HEAD],
      ],
    );
    assert.equal(entries[0]!.startTime, 1796174558);
    assert.ok(entries.every((e, i) => i === 0 || e.startTime >= entries[i - 1]!.startTime));
    assert.deepEqual(
      entries.map((e) => perHost(e, API)),
      [apiOn(A), apiOn(B), apiOn(B), apiOn(C)],
    );
    assert.deepEqual(
      entries.map((e) => perHost(e, WEB)),
      [A, A, A, W2].map((r) => [["-", HOSTS.web3, r.releaseId]]),
    );
    const web = serviceReleases(entries[3]!.releases, WEB)[0]!;
    assert.deepEqual(
      [web.resource, web.commit, web.urn],
      [
        WEB,
        W2.commit,
        `urn:pulumi:${STACK}::fleet::fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::${WEB}-release`,
      ],
    );
    const api1 = serviceReleases(entries[3]!.releases, API)[0]!;
    assert.deepEqual([api1.resource, api1.hostName], [`${API}@web1`, "web1"]);
    assert.ok(
      fs.readdirSync(HISTORY).some((n) => n.endsWith(".attrs")),
      "the CLI's .attrs sidecars are there, and ignored",
    );
  });

  it("gives the pins of each succeeded version, and refuses the failed one", () => {
    const entries = history();
    const pin = (api: typeof A, web: typeof A) => ({ [API]: api, [WEB]: web });
    assert.deepEqual(pinsForVersion(entries, 1), pin(A, A));
    assert.deepEqual(pinsForVersion(entries, 2), pin(B, A));
    assert.deepEqual(pinsForVersion(entries, 4), pin(C, W2));
    assert.throws(() => pinsForVersion(entries, 3), /version 3 \(update\) failed: pick a succeeded version/);
    assert.throws(() => pinsForVersion(entries, 5), /no version 5 in the history \(versions 1…4\)/);
  });

  it("finds pinned releases a host no longer keeps, per host, with the deploy-from-source advice", () => {
    const current = readCurrentReleases(BACKEND, "fleet", STACK);
    assert.deepEqual(
      serviceReleases(current, API).map((r) => [...r.retainedReleases].sort()),
      Object.keys(HOSTS).map(() => [C.releaseId, B.releaseId].sort()),
    );
    assert.deepEqual(missingReleases(pinsForVersion(history(), 2), current), []);
    const missing = missingReleases(pinsForVersion(history(), 1), current);
    assert.deepEqual(
      missing.map((m) => [m.service, m.host, m.releaseId]),
      Object.keys(HOSTS).map((h) => [API, h, A.releaseId]),
      "WEB still keeps A; API lost it on every host",
    );
    assert.match(
      missing[0]!.message,
      new RegExp(
        `^${API}: release ${A.releaseId} is not available: web1 \\(127\\.0\\.0\\.11\\) no longer keeps it \\(it keeps: `,
      ),
    );
    assert.match(missing[0]!.message, new RegExp(`set the service's source ref to ${A.commit}, unpin, pulumi up`));
    const gone = missingReleases({ old: { releaseId: "abc", commit: "abc" } }, current);
    assert.match(gone[0]!.message, /old: release abc is not available: the service is not in the current state/);
  });

  it("reads gzip-compressed history and names a corrupt file in its error", () => {
    const dir = copyBackend();
    const hist = path.join(dir, ".pulumi", "history", "fleet", STACK);
    const names = [
      ...new Set(fs.readdirSync(hist).map((n) => n.replace(/\.(history|checkpoint)\.json.*$/, ""))),
    ].sort();
    for (const kind of ["history", "checkpoint"]) {
      const f = path.join(hist, `${names[1]}.${kind}.json`);
      fs.writeFileSync(`${f}.gz`, zlib.gzipSync(fs.readFileSync(f)));
      fs.rmSync(f);
    }
    assert.deepEqual(perHost(history(dir)[1]!, API), apiOn(B));
    const corrupt = path.join(hist, `${names[2]}.checkpoint.json`);
    fs.writeFileSync(corrupt, '{"version":3,"checkpoint":{"latest":{"resources":[{"urn":');
    assert.throws(
      () => history(dir),
      (e: Error) => e.message.startsWith(`${corrupt}: not valid JSON`),
    );
    fs.writeFileSync(corrupt, '{"version":3,"checkpoint":{"latest":{"resources":{}}}}');
    assert.throws(() => history(dir), new RegExp(`${corrupt}: checkpoint.latest.resources is not a list`));
    fs.writeFileSync(corrupt, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]));
    assert.throws(() => readJsonFile(corrupt), /zstd-compressed/);
    assert.throws(() => listHistory(path.join(dir, "nope"), "fleet", STACK), /no history/);
  });

  it("never decrypts: a secret field it needs is reported, not read", () => {
    const dir = copyBackend();
    const stackFile = path.join(dir, ".pulumi", "stacks", "fleet", `${STACK}.json`);
    const text = fs.readFileSync(stackFile, "utf8");
    // The connection is a secret output: the CLI stores it as ciphertext, and fleet needs none of it.
    assert.match(
      text,
      /"connection":\{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext":"v1:/,
    );
    const doc = JSON.parse(text);
    const web = doc.checkpoint.latest.resources.find((r: any) => r.outputs?.name === WEB);
    web.outputs.releaseId = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "x" };
    fs.writeFileSync(stackFile, JSON.stringify(doc));
    assert.throws(
      () => readCurrentReleases(dir, "fleet", STACK),
      /output "releaseId" is a secret; fleet never decrypts/,
    );
  });
});

describe("rollback: a service on several hosts (one resource per host, keyed by URN)", () => {
  it("--list shows each host's release, not one host for the whole service", () => {
    const lines = historyTable(history()).split("\n");
    const row = (r: typeof A, w: typeof A) =>
      `  ${Object.keys(HOSTS)
        .map((h) => `${API}@${h}=${r.releaseId}`)
        .join(" ")} ${WEB}=${w.releaseId}`;
    assert.ok(lines[2]!.startsWith("2 ") && lines[2]!.endsWith(row(B, A)), lines[2]);
    assert.ok(lines[4]!.endsWith(row(C, W2)), lines[4]);
  });

  it("refuses a succeeded version whose hosts ran different releases, with the choices", () => {
    // A refresh after a partly failed update records such a state as succeeded; the files here
    // have none, so update 2 is given web2's release A in memory.
    const entries = history();
    const v2 = entries[1]!;
    const web2 = serviceReleases(v2.releases, API).find((r) => r.hostName === "web2")!;
    const mixed: HistoryEntry = { ...v2, releases: { ...v2.releases, [web2.urn]: { ...web2, ...A } } };
    const withMixed = entries.map((e) => (e === v2 ? mixed : e));
    assert.throws(
      () => pinsForVersion(withMixed, 2),
      new RegExp(
        `version 2: ${API} ran different releases on its hosts \\(web1=${B.releaseId}, web2=${A.releaseId}, web3=${B.releaseId}\\)`,
      ),
    );
    assert.throws(() => pinsForVersion(withMixed, 2), new RegExp(`npm run rollback -- --service ${API} <release>`));
    assert.deepEqual(pinOneService(withMixed, API, B.releaseId), { [API]: B });
  });

  it("the pins it writes are per service (fleet:pins.<service>), for every host of that service", () => {
    const pins = pinsForVersion(history(), 4);
    const written = JSON.parse(
      pulumiCommands(pins, "dev")[0]!
        .at(-1)!
        .replace(/^fleet:pins=/, ""),
    ) as Record<string, unknown>;
    assert.deepEqual(written[API], { releaseId: C.releaseId, commit: C.commit });
    assert.deepEqual(written, pins);
  });
});

describe("rollback: command lines and arguments", () => {
  const pins = {
    api: { releaseId: "2b2b2b2b2b2b", commit: "2b2b".repeat(10) },
    "web.v2": { releaseId: "w1", commit: "c1" },
  };

  it("pulumiCommands: one pulumi up that saves the whole fleet:pins object as it applies it, without a second preview", () => {
    assert.deepEqual(pulumiCommands(pins, "prod"), [
      ["pulumi", "up", "--stack", "prod", "--yes", "--skip-preview", "--config", `fleet:pins=${JSON.stringify(pins)}`],
    ]);
  });

  it("pulumiCommands: ids that --path would turn into numbers or booleans stay strings", () => {
    const odd = { api: { releaseId: "123456789012", commit: "true" } };
    const value = pulumiCommands(odd, "dev")[0]!
      .at(-1)!
      .replace(/^fleet:pins=/, "");
    assert.deepEqual(JSON.parse(value), odd);
  });

  it("parses the arguments, with the stack and backend defaults", () => {
    const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const line = parseRollbackArgs(argv, env, "/proj", "/home/u");
      assert.equal(line.kind, "run", JSON.stringify(line));
      return (line as { args: RollbackArgs }).args;
    };
    const problem = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const line = parseRollbackArgs(argv, env, "/proj", "/home/u");
      assert.equal(line.kind, "usage", JSON.stringify(line));
      return (line as { problem: string }).problem;
    };
    const env = { PULUMI_STACK: "prod", PULUMI_BACKEND_URL: "file://~/state" };
    assert.deepEqual(run(["3", "--dry-run"], env), {
      mode: "version",
      version: 3,
      stack: "prod",
      cwd: "/proj",
      backendDir: "/home/u/state",
      dryRun: true,
    });
    assert.equal(run(["--list"]).backendDir, "/proj");
    assert.equal(run(["--list"]).stack, "dev");
    assert.equal(run(["--list", "-C", "sub"]).backendDir, "/proj/sub", "the project folder is --cwd");
    assert.equal(run(["--list"], { PULUMI_BACKEND_URL: "file://./state" }).backendDir, "/proj/state");
    assert.equal(run(["--list", "--backend-dir", "b"]).backendDir, "/proj/b");
    assert.deepEqual(run(["--service", "api", "abc", "--stack", "x"]).service, { name: "api", releaseId: "abc" });
    assert.equal(run(["--unpin", "-s", "x"]).stack, "x");
    assert.match(problem(["--list", "2"]), /^rollback: unexpected argument "2" \(see npm run rollback -- --help\)$/);
    assert.match(problem(["--list", "--unpin"]), /give one of --list, --unpin/);
    assert.match(problem(["--service", "api"]), /--service api needs the release: --service <name> <release>/);
    assert.match(problem(["--service"]), /--service needs a value: --service <name>/);
    assert.match(problem(["two"]), /not a version number: two/);
    assert.match(problem(["1e3"]), /not a version number: 1e3/);
    assert.match(problem([]), /give --list, --unpin, --service <name> <release> or a <version>/);
    assert.match(problem(["--bogus"]), /^rollback: unknown option --bogus \(see npm run rollback -- --help\)$/);
    assert.match(
      problem(["--list"], { PULUMI_BACKEND_URL: "s3://bucket" }),
      /the stack's backend is S3 bucket bucket.*: rollback reads a file backend's history on this machine; give --backend-dir/,
    );
    assert.match(
      problem(["--list"], { PULUMI_BACKEND_URL: "file://" }),
      /PULUMI_BACKEND_URL=file:\/\/: file:\/\/ needs a folder/,
    );
    const help = parseRollbackArgs(["--list", "-h"], {}, "/p", "/h");
    assert.equal(help.kind, "help");
    assert.match((help as { text: string }).text, /--service <name> <release>[\s\S]*--backend-dir <dir>[\s\S]*127 /);
  });

  it("the --list table and --service pins come from the history", () => {
    const entries = history();
    const lines = historyTable(entries).split("\n");
    assert.equal(lines.length, 5);
    assert.match(lines[0]!, /^VERSION\s+TIME\s+GIT HEAD\s+RESULT\s+SERVICES$/);
    assert.match(
      lines[3]!,
      new RegExp(`^3\\s+2026-12-02T01:22:51Z\\s+${FLEET_HEAD.slice(0, 8)}\\s+failed\\s+${API}@web1=${B.releaseId} `),
    );
    assert.deepEqual(pinOneService(entries, WEB, A.releaseId), { [WEB]: A });
    assert.deepEqual(pinOneService(entries, WEB, "unknown"), { [WEB]: { releaseId: "unknown", commit: "unknown" } });
    // The other services keep their pins; the service's own pin is replaced.
    const other = { releaseId: "r-other", commit: "c-other" };
    assert.deepEqual(pinOneService(entries, WEB, A.releaseId, { [API]: other, [WEB]: other }), {
      [API]: other,
      [WEB]: A,
    });
  });
});
