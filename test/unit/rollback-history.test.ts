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
import { serviceReleaseResource, versionedCheckpoint, writeUpdate, type UpdateRecord } from "../support/diy-backend";

/**
 * The file backend reader on test/fixtures/backend, laid out as the CLI writes it: four updates of
 * stack fleet/dev (api changes release in each successful one, web only in the last; the third
 * failed and was rolled back), secrets in outputs as ciphertext objects.
 */
const BACKEND = path.resolve(__dirname, "..", "fixtures", "backend");
const HISTORY = path.join(BACKEND, ".pulumi", "history", "fleet", "dev");
const id = (p: string) => p.repeat(40 / p.length).slice(0, 12);
const commit = (p: string) => p.repeat(40 / p.length);

/** The one release of a single-host service in an update. */
const only = (e: HistoryEntry, service: string) => {
  const [release, ...more] = serviceReleases(e.releases, service);
  assert.equal(more.length, 0, `${service} is on one host`);
  return release!;
};

function copyBackend(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-rb-"));
  fs.cpSync(BACKEND, dir, { recursive: true });
  return dir;
}

describe("rollback: reading a file backend's history", () => {
  it("lists the updates oldest first, numbered 1… (the files all say version 0), with each service's release", () => {
    const entries = listHistory(BACKEND, "fleet", "dev");
    assert.deepEqual(
      entries.map((e) => [e.version, e.storedVersion, e.result, e.gitHead?.slice(0, 4), e.message]),
      [
        [1, 0, "succeeded", "0a0a", "first deploy"],
        [2, 0, "succeeded", "0b0b", "api 2"],
        [3, 0, "failed", "0c0c", "api 3 (unhealthy: rolled back)"],
        [4, 0, "succeeded", "0d0d", "api 3 and web 2"],
      ],
    );
    assert.equal(entries[0]!.startTime, 1767225600);
    assert.deepEqual(
      entries.map((e) => [only(e, "api").releaseId, only(e, "web").releaseId]),
      [
        [id("1a1a"), id("4d4d")],
        [id("2b2b"), id("4d4d")],
        [id("2b2b"), id("4d4d")],
        [id("3c3c"), id("5e5e")],
      ],
    );
    assert.equal(only(entries[3]!, "web").commit, commit("5e5e"));
    assert.equal(only(entries[3]!, "web").address, "10.0.0.5");
    assert.deepEqual(
      [only(entries[3]!, "web").resource, only(entries[3]!, "web").hostName, only(entries[3]!, "web").urn],
      [
        "web",
        undefined,
        "urn:pulumi:dev::fleet::fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::web-release",
      ],
    );
  });

  it("gives the pins of each succeeded version, and refuses the failed one", () => {
    const entries = listHistory(BACKEND, "fleet", "dev");
    const pin = (a: string, w: string) => ({
      api: { releaseId: id(a), commit: commit(a) },
      web: { releaseId: id(w), commit: commit(w) },
    });
    assert.deepEqual(pinsForVersion(entries, 1), pin("1a1a", "4d4d"));
    assert.deepEqual(pinsForVersion(entries, 2), pin("2b2b", "4d4d"));
    assert.deepEqual(pinsForVersion(entries, 4), pin("3c3c", "5e5e"));
    assert.throws(() => pinsForVersion(entries, 3), /version 3 \(update\) failed: pick a succeeded version/);
    assert.throws(() => pinsForVersion(entries, 5), /no version 5 in the history \(versions 1…4\)/);
  });

  it("finds pinned releases the hosts no longer keep, with the deploy-from-source advice", () => {
    const entries = listHistory(BACKEND, "fleet", "dev");
    const current = readCurrentReleases(BACKEND, "fleet", "dev");
    assert.deepEqual(serviceReleases(current, "api")[0]!.retainedReleases, [id("2b2b"), id("3c3c")]);
    assert.deepEqual(missingReleases(pinsForVersion(entries, 2), current), []);
    const missing = missingReleases(pinsForVersion(entries, 1), current);
    assert.deepEqual(
      missing.map((m) => [m.service, m.releaseId]),
      [["api", id("1a1a")]],
    );
    assert.match(missing[0]!.message, /10\.0\.0\.5 no longer keeps it \(it keeps: 2b2b2b2b2b2b, 3c3c3c3c3c3c\)/);
    assert.match(
      missing[0]!.message,
      new RegExp(`set the service's source ref to ${commit("1a1a")}, unpin, pulumi up`),
    );
    const gone = missingReleases({ old: { releaseId: "abc", commit: "abc" } }, current);
    assert.match(gone[0]!.message, /old: release abc is not available: the service is not in the current state/);
  });

  it("reads gzip-compressed history and names a corrupt file in its error", () => {
    const dir = copyBackend();
    const hist = path.join(dir, ".pulumi", "history", "fleet", "dev");
    const name = "dev-1767229200123456789";
    for (const kind of ["history", "checkpoint"]) {
      const f = path.join(hist, `${name}.${kind}.json`);
      fs.writeFileSync(`${f}.gz`, zlib.gzipSync(fs.readFileSync(f)));
      fs.rmSync(f);
    }
    assert.equal(only(listHistory(dir, "fleet", "dev")[1]!, "api").releaseId, id("2b2b"));
    const corrupt = path.join(hist, "dev-1767232800123456789.checkpoint.json");
    fs.writeFileSync(corrupt, '{"version":3,"checkpoint":{"latest":{"resources":[{"urn":');
    assert.throws(
      () => listHistory(dir, "fleet", "dev"),
      (e: Error) => e.message.startsWith(`${corrupt}: not valid JSON`),
    );
    fs.writeFileSync(corrupt, '{"version":3,"checkpoint":{"latest":{"resources":{}}}}');
    assert.throws(
      () => listHistory(dir, "fleet", "dev"),
      new RegExp(`${corrupt}: checkpoint.latest.resources is not a list`),
    );
    fs.writeFileSync(corrupt, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]));
    assert.throws(() => readJsonFile(corrupt), /zstd-compressed/);
    assert.throws(() => listHistory(path.join(dir, "nope"), "fleet", "dev"), /no history/);
  });

  it("never decrypts: a secret field it needs is reported, not read", () => {
    const dir = copyBackend();
    const stackFile = path.join(dir, ".pulumi", "stacks", "fleet", "dev.json");
    const text = fs.readFileSync(stackFile, "utf8");
    assert.match(
      text,
      /"connection":\{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext"/,
    );
    const doc = JSON.parse(text);
    const api = doc.checkpoint.latest.resources.find((r: any) => r.outputs?.name === "api");
    api.outputs.releaseId = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "x" };
    fs.writeFileSync(stackFile, JSON.stringify(doc));
    assert.throws(
      () => readCurrentReleases(dir, "fleet", "dev"),
      /output "releaseId" is a secret; fleet never decrypts/,
    );
  });

  it("the test writer produces the fixtures byte for byte (so real-deploy histories have the same format)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-rb-"));
    const names = fs.readdirSync(HISTORY).filter((n) => n.endsWith(".history.json"));
    for (const n of names.sort()) {
      const nanos = /-(\d+)\.history\.json$/.exec(n)![1]!;
      const checkpoint = JSON.parse(
        fs.readFileSync(path.join(HISTORY, n.replace(".history.", ".checkpoint.")), "utf8"),
      );
      writeUpdate(dir, "fleet", "dev", nanos, readJsonFile(path.join(HISTORY, n)) as UpdateRecord, checkpoint);
    }
    for (const rel of [
      ".pulumi/stacks/fleet/dev.json",
      ".pulumi/meta.yaml",
      ...names.map((n) => `.pulumi/history/fleet/dev/${n}`),
    ]) {
      assert.equal(fs.readFileSync(path.join(dir, rel), "utf8"), fs.readFileSync(path.join(BACKEND, rel), "utf8"), rel);
    }
  });
});

/**
 * A service on three hosts (resources `api@web1`, `api@web2`, `api@web3`, as index.ts names them)
 * and one single-host service (`web`). Update 2 left the hosts on different releases; update 3
 * put them all on C, after which web1 keeps B and C, web2 keeps A and C, web3 keeps only C.
 */
function threeHostBackend(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-rb3-"));
  const address: Record<string, string> = { web1: "10.0.0.11", web2: "10.0.0.12", web3: "10.0.0.13" };
  const release = (resource: string, service: string, host: string, p: string, retained: string[]) =>
    serviceReleaseResource(
      "dev",
      "fleet",
      resource,
      `${host}:22/${service}`,
      {},
      {
        name: service,
        host,
        releaseId: id(p),
        commit: commit(p),
        retainedReleases: retained.map(id),
      },
    );
  const updates: [string, Record<string, [string, string[]]>][] = [
    ["all on A", { web1: ["aaaa", ["aaaa"]], web2: ["aaaa", ["aaaa"]], web3: ["aaaa", ["aaaa"]] }],
    [
      "web1 and web3 on B",
      { web1: ["bbbb", ["aaaa", "bbbb"]], web2: ["aaaa", ["aaaa"]], web3: ["bbbb", ["aaaa", "bbbb"]] },
    ],
    ["all on C", { web1: ["cccc", ["bbbb", "cccc"]], web2: ["cccc", ["aaaa", "cccc"]], web3: ["cccc", ["cccc"]] }],
  ];
  updates.forEach(([message, hosts], i) => {
    const resources = [
      ...Object.entries(hosts).map(([h, [p, kept]]) => release(`api@${h}`, "api", address[h]!, p, kept)),
      release("web", "web", "10.0.0.5", "4d4d", ["4d4d"]),
    ];
    const time = 1767225600 + i * 3600;
    writeUpdate(
      dir,
      "fleet",
      "dev",
      `${time}000000000`,
      {
        kind: "update",
        startTime: time,
        message,
        environment: {},
        config: {},
        result: "succeeded",
        endTime: time + 30,
      },
      versionedCheckpoint("dev", "fleet", new Date(time * 1000).toISOString(), resources),
    );
  });
  return dir;
}

describe("rollback: a service on several hosts (one resource per host, keyed by URN)", () => {
  const backend = threeHostBackend();

  it("--list shows each host's release, not one host for the whole service", () => {
    const lines = historyTable(listHistory(backend, "fleet", "dev")).split("\n");
    assert.match(
      lines[2]!,
      new RegExp(`^2 .*  api@web1=${id("bbbb")} api@web2=${id("aaaa")} api@web3=${id("bbbb")} web=${id("4d4d")}$`),
    );
    assert.match(lines[3]!, new RegExp(`  api@web1=${id("cccc")} api@web2=${id("cccc")} api@web3=${id("cccc")} web=`));
  });

  it("pins one release per service when its hosts agree, and refuses a version where they did not", () => {
    const entries = listHistory(backend, "fleet", "dev");
    assert.deepEqual(pinsForVersion(entries, 1), {
      api: { releaseId: id("aaaa"), commit: commit("aaaa") },
      web: { releaseId: id("4d4d"), commit: commit("4d4d") },
    });
    assert.throws(
      () => pinsForVersion(entries, 2),
      new RegExp(
        `version 2: api ran different releases on its hosts \\(web1=${id("bbbb")}, web2=${id("aaaa")}, web3=${id("bbbb")}\\)`,
      ),
    );
    assert.throws(() => pinsForVersion(entries, 2), /npm run rollback -- --service api <release>/);
    assert.deepEqual(pinOneService(entries, "api", id("bbbb")), {
      api: { releaseId: id("bbbb"), commit: commit("bbbb") },
    });
  });

  it("checks every host for the pinned release, and names the ones that no longer keep it", () => {
    const entries = listHistory(backend, "fleet", "dev");
    const missing = missingReleases(pinsForVersion(entries, 1), readCurrentReleases(backend, "fleet", "dev"));
    assert.deepEqual(
      missing.map((m) => [m.service, m.host, m.releaseId]),
      [
        ["api", "web1", id("aaaa")],
        ["api", "web3", id("aaaa")],
      ],
    );
    assert.match(
      missing[0]!.message,
      new RegExp(
        `^api: release ${id("aaaa")} is not available: web1 \\(10\\.0\\.0\\.11\\) no longer keeps it \\(it keeps: ${id("bbbb")}, ${id("cccc")}\\)`,
      ),
    );
    assert.match(missing[1]!.message, /web3 \(10\.0\.0\.13\) no longer keeps it \(it keeps: cccccccccccc\)/);
  });

  it("the pins it writes are per service (fleet:pins.<service>), for every host of that service", () => {
    const pins = pinsForVersion(listHistory(backend, "fleet", "dev"), 3);
    assert.deepEqual(pulumiCommands(pins, "dev").slice(1, 3), [
      ["pulumi", "config", "set", "--path", "fleet:pins.api.releaseId", id("cccc"), "--stack", "dev"],
      ["pulumi", "config", "set", "--path", "fleet:pins.api.commit", commit("cccc"), "--stack", "dev"],
    ]);
  });
});

describe("rollback: command lines and arguments", () => {
  const pins = {
    api: { releaseId: "2b2b2b2b2b2b", commit: commit("2b2b") },
    "web.v2": { releaseId: "w1", commit: "c1" },
  };

  it("pulumiCommands: rm, one --path set per key, then up", () => {
    assert.deepEqual(pulumiCommands(pins, "prod"), [
      ["pulumi", "config", "rm", "fleet:pins", "--stack", "prod"],
      ["pulumi", "config", "set", "--path", "fleet:pins.api.releaseId", "2b2b2b2b2b2b", "--stack", "prod"],
      ["pulumi", "config", "set", "--path", "fleet:pins.api.commit", commit("2b2b"), "--stack", "prod"],
      ["pulumi", "config", "set", "--path", 'fleet:pins["web.v2"].releaseId', "w1", "--stack", "prod"],
      ["pulumi", "config", "set", "--path", 'fleet:pins["web.v2"].commit', "c1", "--stack", "prod"],
      ["pulumi", "up", "--stack", "prod", "--yes"],
    ]);
  });

  it("pulumiCommands: an all-digit id (--path would store a number) sets the whole object as JSON", () => {
    const digits = { api: { releaseId: "123456789012", commit: "123456789012" } };
    assert.deepEqual(pulumiCommands(digits, "dev")[1], [
      "pulumi",
      "config",
      "set",
      "fleet:pins",
      JSON.stringify(digits),
      "--stack",
      "dev",
    ]);
    assert.equal(pulumiCommands({ api: { releaseId: "012345678901", commit: "012345678901" } }, "dev").length, 4);
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
    const entries = listHistory(BACKEND, "fleet", "dev");
    const lines = historyTable(entries).split("\n");
    assert.equal(lines.length, 5);
    assert.match(lines[0]!, /^VERSION\s+TIME\s+GIT HEAD\s+RESULT\s+SERVICES$/);
    assert.match(lines[3]!, /^3\s+2026-01-01T02:00:00Z\s+0c0c0c0c\s+failed\s+api=2b2b2b2b2b2b web=4d4d4d4d4d4d$/);
    assert.deepEqual(pinOneService(entries, "web", id("4d4d")), {
      web: { releaseId: id("4d4d"), commit: commit("4d4d") },
    });
    assert.deepEqual(pinOneService(entries, "web", "unknown"), { web: { releaseId: "unknown", commit: "unknown" } });
  });
});
