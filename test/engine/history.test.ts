import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import {
  listHistory,
  missingReleases,
  pinsForVersion,
  readCurrentReleases,
  serviceReleases,
} from "../../rollback/history";
import { GitApp } from "../support/git-app";
import { hostAddress } from "../support/fleet";
import { outputOf, PROJECT_DIR } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService, selfAlias } from "./support/fixtures";
import { captureBackend, HISTORY_FIXTURE_EVIDENCE } from "./support/history-fixture";
import { currentRelease, deployLog, releaseDirs, wipe } from "./support/host";
import { EngineStack } from "./support/stack";

/**
 * The history the real CLI writes, read by fleet's rollback reader (rollback/history.ts), and the
 * source of its fixture (test/fixtures/backend, refreshed by `npm run fixtures:history`). Four
 * updates of a service on three hosts (API, keepReleases 2) and one on one host (WEB): A; B; a
 * release failing its health gate (a failed update); C with WEB's second release. Release A is
 * then gone from every host, so re-applying update 1 is refused before anything changes.
 */
const API = "eng-hist-api";
const WEB = "eng-hist-web";
const API_HOSTS = ["web1", "web2", "web3"] as const;
const WEB_HOST = "web3";
const PORTS = { api: 18751, web: 18752 };
const STACK = "engine-history";

describe("engine: the file backend's history as the real CLI writes it (web1, web2, web3)", function () {
  this.timeout(300_000);
  const stack = new EngineStack(STACK);
  let api: GitApp;
  let web: GitApp;
  const apiReleases: string[] = [];
  const webReleases: string[] = [];
  let upCodes: number[] = [];
  const entries = () => listHistory(stack.backendDir, "fleet", STACK);

  before(async function () {
    this.timeout(280_000);
    api = new GitApp(PYAPP);
    web = new GitApp(PYAPP);
    await Promise.all(API_HOSTS.map((h) => wipeRoot(h)));
    await selfAlias(API_HOSTS, true);
    await stack.create({
      "fleet:hosts": hostsConfig(API_HOSTS),
      "fleet:services": {
        [API]: pyService({
          hosts: API_HOSTS,
          repo: api.dir,
          port: PORTS.api,
          healthTimeout: "4s",
          extra: { keepReleases: 2 },
        }),
        [WEB]: pyService({ hosts: [WEB_HOST], repo: web.dir, port: PORTS.web }),
      },
    });
    const up = async () => (await stack.pulumi("up", "--yes", "--non-interactive")).code;
    const steps: (() => void)[] = [
      () => undefined,
      () => api.commit("b", { "b.txt": "b\n" }),
      () => api.commit("unhealthy", { "mode.txt": "unhealthy\n" }),
      () => {
        api.commit("c: healthy again", { "mode.txt": null, "c.txt": "c\n" });
        web.commit("web 2", { "w.txt": "2\n" });
      },
    ];
    upCodes = [];
    for (const step of steps) {
      step();
      upCodes.push(await up());
      apiReleases.push(api.head().slice(0, 12));
      webReleases.push(web.head().slice(0, 12));
    }
    captureBackend(stack.backendDir, HISTORY_FIXTURE_EVIDENCE);
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await Promise.all(API_HOSTS.map((h) => wipeRoot(h).catch(() => undefined)));
    await selfAlias(API_HOSTS, false).catch(() => undefined);
  });

  it("four updates, the third failed: pulumi stack history and fleet's reader agree, oldest first", async () => {
    assert.deepEqual(
      upCodes.map((c) => c === 0),
      [true, true, false, true],
    );
    const cli = JSON.parse((await stack.ok("stack", "history", "--json")).stdout) as {
      kind: string;
      result: string;
      startTime: string;
    }[];
    const read = entries();
    assert.deepEqual(
      read.map((e) => `${e.kind} ${e.result}`),
      [...cli].reverse().map((h) => `${h.kind} ${h.result}`),
    );
    assert.deepEqual(
      read.map((e) => [e.version, e.storedVersion, e.result]),
      [
        [1, 0, "succeeded"],
        [2, 0, "succeeded"],
        [3, 0, "failed"],
        [4, 0, "succeeded"],
      ],
    );
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: PROJECT_DIR, encoding: "utf8" }).trim();
    assert.ok(
      read.every((e) => e.gitHead === head),
      "the CLI records the project's git HEAD",
    );
  });

  it("each update records every copy's release, keyed by host; the failed one kept B everywhere", () => {
    const perHost = (i: number, service: string) =>
      serviceReleases(entries()[i]!.releases, service).map((r) => [r.hostName, r.address, r.releaseId]);
    const apiAt = (release: string) => API_HOSTS.map((h) => [h, hostAddress(h), release]);
    assert.deepEqual(perHost(0, API), apiAt(apiReleases[0]!));
    assert.deepEqual(perHost(1, API), apiAt(apiReleases[1]!));
    assert.deepEqual(perHost(2, API), apiAt(apiReleases[1]!), "the failed update's state: B on every host");
    assert.deepEqual(perHost(3, API), apiAt(apiReleases[3]!));
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => perHost(i, WEB)),
      [0, 0, 0, 3].map((i) => [[undefined, hostAddress(WEB_HOST), webReleases[i]!]]),
    );
    assert.throws(() => pinsForVersion(entries(), 3), /version 3 \(update\) failed: pick a succeeded version/);
    assert.deepEqual(pinsForVersion(entries(), 2), {
      [API]: { releaseId: apiReleases[1], commit: api.git("rev-parse", "HEAD~2") },
      [WEB]: { releaseId: webReleases[0], commit: web.git("rev-parse", "HEAD~1") },
    });
  });

  it("the current state's retained releases are what the hosts keep", async () => {
    const current = readCurrentReleases(stack.backendDir, "fleet", STACK);
    for (const h of API_HOSTS) {
      const [release] = serviceReleases(current, API).filter((r) => r.hostName === h);
      assert.deepEqual([...release!.retainedReleases].sort(), await releaseDirs(h, ROOT, API), h);
      assert.equal(release!.releaseId, await currentRelease(h, ROOT, API), h);
    }
    assert.deepEqual(
      missingReleases(pinsForVersion(entries(), 1), current).map((m) => [m.service, m.host]),
      API_HOSTS.map((h) => [API, h]),
    );
  });

  it("npm run rollback -- 1 is refused, naming each host that no longer keeps A, and changes nothing", async () => {
    const before = await Promise.all(API_HOSTS.map(async (h) => (await deployLog(h, ROOT, API)).length));
    const r = await stack.npm("rollback", "1", "--stack", STACK);
    assert.equal(r.code, 1, outputOf(r));
    for (const h of API_HOSTS) {
      assert.match(
        r.stderr,
        new RegExp(
          `${API}: release ${apiReleases[0]} is not available: ${h} \\(${hostAddress(h).replace(/\./g, "\\.")}\\) no longer keeps it`,
        ),
      );
    }
    assert.match(r.stderr, /rollback: nothing was changed\./);
    assert.doesNotMatch(r.stdout, /^\$ pulumi/m, "no pulumi command ran");
    for (const [i, h] of API_HOSTS.entries()) {
      assert.equal(await currentRelease(h, ROOT, API), apiReleases[3], h);
      assert.equal((await deployLog(h, ROOT, API)).length, before[i], `${h}: no deploy`);
    }
  });
});

const wipeRoot = (host: string) => wipe(host, ROOT, [API, WEB]);
