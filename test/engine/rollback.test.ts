import { strict as assert } from "assert";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { outputOf } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService, selfAlias } from "./support/fixtures";
import { currentRelease, deployLog, releaseDirs, served, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * Rollback as users do it with the real CLI: `pulumi stack history`, then `npm run rollback --
 * <N>`. A service on three hosts (web1, web2, web3) and one on one host (web3), deployed three
 * times; the rollback to the first update must put every copy back on its first release in one
 * `pulumi up`, switching to the releases the hosts kept (no upload).
 */
const WIDE = "eng-rb3";
const NARROW = "eng-rb1";
const WIDE_HOSTS = ["web1", "web2", "web3"] as const;
const NARROW_HOST = "web3";
const PORTS = { wide: 18721, narrow: 18722 };

describe("engine: stack history and npm run rollback with the real CLI (web1, web2, web3)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  let wide: GitApp;
  let narrow: GitApp;
  /** The releases of each update, in order. */
  const releases: { wide: string; narrow: string }[] = [];
  const where = [
    ...WIDE_HOSTS.map((h) => ({ host: h, svc: WIDE, port: PORTS.wide, app: () => wide })),
    { host: NARROW_HOST, svc: NARROW, port: PORTS.narrow, app: () => narrow },
  ];

  before(async function () {
    this.timeout(180_000);
    wide = new GitApp(PYAPP);
    narrow = new GitApp(PYAPP);
    await Promise.all(WIDE_HOSTS.map((h) => wipe(h, ROOT, [WIDE, NARROW])));
    await selfAlias(WIDE_HOSTS, true);
    await stack.create({
      "fleet:hosts": hostsConfig(WIDE_HOSTS),
      "fleet:services": {
        [WIDE]: pyService({ hosts: WIDE_HOSTS, repo: wide.dir, port: PORTS.wide }),
        [NARROW]: pyService({ hosts: [NARROW_HOST], repo: narrow.dir, port: PORTS.narrow }),
      },
    });
    for (let i = 0; i < 3; i++) {
      if (i > 0) {
        wide.commit(`wide ${i}`, { "n.txt": `${i}\n` });
        narrow.commit(`narrow ${i}`, { "n.txt": `${i}\n` });
      }
      await stack.ok("up", "--yes", "--non-interactive");
      releases.push({ wide: wide.head().slice(0, 12), narrow: narrow.head().slice(0, 12) });
    }
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await Promise.all(WIDE_HOSTS.map((h) => wipe(h, ROOT, [WIDE, NARROW]).catch(() => undefined)));
    await selfAlias(WIDE_HOSTS, false).catch(() => undefined);
  });

  it("three updates deployed every copy: each host serves the third release", async () => {
    for (const w of where) {
      const want = w.svc === WIDE ? releases[2]!.wide : releases[2]!.narrow;
      assert.equal((await served(hostAddress(w.host), w.port))?.release, want, `${w.svc} on ${w.host}`);
      assert.equal((await releaseDirs(w.host, ROOT, w.svc)).length, 3, `${w.svc} on ${w.host} keeps 3 releases`);
    }
  });

  it("npm run rollback -- <N> (update N of pulumi stack history, as --list numbers it) puts every copy back on update N's release, in one up, without an upload", async () => {
    const oldestFirst = await stack.historyOldestFirst();
    assert.deepEqual(
      oldestFirst.map((h) => `${h.kind} ${h.result}`),
      ["update succeeded", "update succeeded", "update succeeded"],
    );
    const n = 1;
    const list = await stack.npm("rollback", "--list", "--stack", stack.name);
    assert.equal(list.code, 0, outputOf(list));
    const row = list.stdout.split("\n").find((l) => l.startsWith(`${n} `));
    assert.ok(
      // One entry per copy: the service on several hosts is listed per host.
      WIDE_HOSTS.every((h) => row?.includes(`${WIDE}@${h}=${releases[0]!.wide}`)) &&
        row?.includes(`${NARROW}=${releases[0]!.narrow}`),
      list.stdout,
    );

    const inodes = async (host: string, svc: string) => sh(host, `stat -c '%n %i' ${ROOT}/${svc}/releases/* | sort`);
    const before = await Promise.all(
      where.map(async (w) => ({
        dirs: await inodes(w.host, w.svc),
        log: (await deployLog(w.host, ROOT, w.svc)).length,
      })),
    );

    const r = await stack.npm("rollback", String(n), "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    assert.equal(outputOf(r).match(/^\$ pulumi up\b/gm)?.length, 1, `one pulumi up:\n${outputOf(r)}`);

    for (const [i, w] of where.entries()) {
      const want = w.svc === WIDE ? releases[0]!.wide : releases[0]!.narrow;
      const from = w.svc === WIDE ? releases[2]!.wide : releases[2]!.narrow;
      const label = `${w.svc} on ${w.host}`;
      assert.equal((await served(hostAddress(w.host), w.port))?.commit, w.app().git("rev-parse", "HEAD~2"), label);
      assert.equal(await currentRelease(w.host, ROOT, w.svc), want, label);
      assert.equal(await inodes(w.host, w.svc), before[i]!.dirs, `${label}: the same release directories (no upload)`);
      const log = await deployLog(w.host, ROOT, w.svc);
      assert.equal(log.length, before[i]!.log + 1, `${label}: one deploy.log line`);
      assert.match(log[log.length - 1]!, new RegExp(` ${from} -> ${want} ok `), label);
    }
    const state = serviceReleases((await stack.exportState()).deployment);
    assert.deepEqual(Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v.outputs.releaseId])), {
      ...Object.fromEntries(WIDE_HOSTS.map((h) => [`${WIDE}@${h}-release`, releases[0]!.wide])),
      [`${NARROW}-release`]: releases[0]!.narrow,
    });
  });
  it("npm run rollback -- --service pins one service and keeps the others' pins (they stay where update N put them)", async () => {
    // After the rollback to update 1 every service is pinned; pinning the narrow one to its
    // second release must not unpin the wide one (it would deploy its source: the third release).
    const r = await stack.npm("rollback", "--service", NARROW, releases[1]!.narrow, "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    assert.equal(await currentRelease(NARROW_HOST, ROOT, NARROW), releases[1]!.narrow);
    for (const h of WIDE_HOSTS) assert.equal(await currentRelease(h, ROOT, WIDE), releases[0]!.wide, `${WIDE} on ${h}`);
    const pins = JSON.parse((await stack.ok("config", "get", "fleet:pins")).stdout) as Record<
      string,
      { releaseId: string }
    >;
    assert.deepEqual(Object.fromEntries(Object.entries(pins).map(([k, v]) => [k, v.releaseId])), {
      [WIDE]: releases[0]!.wide,
      [NARROW]: releases[1]!.narrow,
    });
  });
});
