import { strict as assert } from "assert";
import * as path from "path";
import { shippedProvider } from "../../providers/ship";
import { shq } from "../../commands/quote";
import { statusScript } from "../../commands/status";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress, sh, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

/**
 * Issue 29, on a real server (web2): the service's own account (`deploy`, its `runAs`) plants
 * links and names in the trees it owns, and fleet's root steps (activation, re-activation of a
 * retained release with another deps set, install, status, delete) never turn them into root's
 * help. The victims are root-only files outside fleet's root; after every step their owner, mode
 * and content are what they were, and the right release serves.
 */
const HOST = "web2";
const SERVICE = "hostile-svc";
const PORT = 18971;
const ROOT = "/srv/fleet-test";
const D = `${ROOT}/${SERVICE}`;
const VICTIM = "/etc/fleet-victim";
const VICTIM_DIR = "/root/fleet-victim-dir";
const SECRET = "root-only secret";
/** A unit the "distribution" has: a service may not take its name. */
const VENDOR_UNIT = "/usr/local/lib/systemd/system/fleet-vendor-probe.service";

/** Runs `command` on the host as the service's user. */
const asUser = (command: string) => sh(HOST, `runuser -u deploy -- /bin/sh -c ${shq(command)}`);

/** Owner, mode and content of every victim: compared before and after each step. */
const victims = () =>
  sh(
    HOST,
    `stat -c '%n %U:%G %a' ${VICTIM} ${VICTIM_DIR}/x ${VENDOR_UNIT}; sha256sum ${VICTIM} ${VICTIM_DIR}/x ${VENDOR_UNIT}`,
  );

describe("a hostile service user never gets root's help (real server, web2, issue 29)", function () {
  this.timeout(300_000);
  let provider: ProviderHost;
  let app: GitApp;
  let resource: SimulatedResource;
  let baseline: string;

  const service = (over: Partial<ServiceCase> = {}): ServiceCase => ({
    name: SERVICE,
    connection: connectionFor(HOST),
    root: ROOT,
    runAs: "deploy",
    source: { git: app.dir },
    install: {
      run: "mkdir -p vendor && cp requirements.txt vendor/ && echo v1 > vendor/tag",
      when: ["requirements.txt"],
    },
    start: "python3 app.py",
    env: { APP_HOST: hostAddress(HOST), APP_PORT: String(PORT) },
    health: {
      url: `http://${hostAddress(HOST)}:${PORT}/api/health`,
      version: { url: `http://${hostAddress(HOST)}:${PORT}/api/version`, field: "commit" },
      timeout: "10s",
    },
    keepReleases: 3,
    ...over,
  });
  const up = (over: Partial<ServiceCase> = {}) => resource.up(serviceInputs(service(over)));
  const releaseOf = () => String(resource.state!.outputs["releaseId"]);
  const serving = () => sh(HOST, `readlink ${D}/current`);

  before(async () => {
    provider = await ProviderHost.start();
    app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
    app.commit("requirements", { "requirements.txt": "nothing==1\n" });
    resource = new SimulatedResource(provider, shippedProvider("service"), { name: SERVICE });
    await sshRun(
      HOST,
      [
        `rm -rf ${D}; systemctl disable --now ${SERVICE} fleet-vendor-probe 2>/dev/null; rm -f /etc/systemd/system/${SERVICE}.service /etc/systemd/system/fleet-vendor-probe.service`,
        `printf '%s\\n' ${shq(SECRET)} > ${VICTIM}; chmod 600 ${VICTIM}`,
        `mkdir -p ${VICTIM_DIR}; echo keep > ${VICTIM_DIR}/x; chmod 700 ${VICTIM_DIR}`,
        `mkdir -p ${path.dirname(VENDOR_UNIT)}; printf '[Service]\\nType=oneshot\\nExecStart=/bin/true\\n' > ${VENDOR_UNIT}`,
        "systemctl daemon-reload",
      ].join("\n"),
    );
    baseline = await victims();
  });

  after(async () => {
    await resource.destroy().catch(() => undefined);
    await sshRun(
      HOST,
      `rm -rf ${D} ${VICTIM} ${VICTIM_DIR} ${VENDOR_UNIT} /etc/systemd/system/fleet-vendor-probe.service; systemctl daemon-reload`,
    ).catch(() => undefined);
    await provider.stop();
  });

  it("re-activating a kept release whose markers, REVISION and a word-splitting name the user planted: nothing outside the release changes", async () => {
    await up();
    const first = releaseOf();
    const firstCommit = String(resource.state!.outputs["commit"]);
    app.commit("v2", { "VERSION.txt": "v2\n" });
    await up();
    assert.notEqual(releaseOf(), first);
    // fleet's markers are root's, outside the release.
    assert.equal(await sh(HOST, `stat -c %U ${D}/.marks ${D}/.marks/${first}`), "root\nroot");

    const R = `${D}/releases/${first}`;
    await asUser(
      [
        `set -e; cd ${R}`,
        `for m in .fleet-staged .fleet-activated .fleet-deps REVISION; do rm -f "$m"; ln -s ${VICTIM} "$m"; done`,
        // An unquoted `for l in $(find …)` splits this name into "$R/a" and the victim.
        `mkdir -p "a ${VICTIM_DIR}"; ln -s ${D}/deps/gone "a ${VICTIM_DIR}/x"`,
        `ln -s ${D}/deps/gone "b"`,
      ].join("\n"),
    );
    // A rollback to the kept release with another install command (another deps set): relink,
    // install from the release, activation markers, REVISION reads.
    await up({
      pin: { releaseId: first, commit: firstCommit },
      install: {
        run: "mkdir -p vendor && cp requirements.txt vendor/ && echo v2 > vendor/tag",
        when: ["requirements.txt"],
      },
    });
    assert.equal(await serving(), `releases/${first}`);
    assert.equal(await victims(), baseline, "the victims are unchanged");
    assert.equal(await sh(HOST, `test -L ${R}/b && echo link || echo gone`), "gone", "links to another deps set went");
    assert.equal(await sh(HOST, `cat ${R}/vendor/tag`), "v2");

    const status = await sh(
      HOST,
      statusScript({ root: ROOT, name: SERVICE, unitName: SERVICE, healthUrl: service().health!.url }),
    );
    assert.match(status, new RegExp(`^commit=${firstCommit}$`, "m"), status);
    assert.doesNotMatch(status, new RegExp(SECRET));
    const read = await resource.refresh();
    assert.doesNotMatch(JSON.stringify(read?.outputs ?? {}), new RegExp(SECRET));
  });

  it("an install whose `when` file the user turned into a link to a root-only file fails, and hands the user nothing", async () => {
    app.commit("v3", { "VERSION.txt": "v3\n" });
    await up();
    const third = releaseOf();
    const servingBefore = await serving();
    // The kept release B gets a linked requirements.txt, then a deploy with a new deps set re-activates it.
    const previous = (await sh(HOST, `ls ${D}/releases`)).split("\n").find((r) => r !== third)!;
    const previousCommit = await sh(HOST, `cat ${D}/.marks/${previous}/commit`);
    await asUser(`cd ${D}/releases/${previous} && rm -f requirements.txt && ln -s ${VICTIM} requirements.txt`);
    await assert.rejects(
      up({
        pin: { releaseId: previous, commit: previousCommit },
        install: {
          run: "mkdir -p vendor && cp requirements.txt vendor/ && echo v3 > vendor/tag",
          when: ["requirements.txt"],
        },
      }),
      /install/,
    );
    assert.equal(await serving(), servingBefore, "the serving release is untouched");
    assert.equal(await victims(), baseline);
    assert.equal(await sh(HOST, `grep -rl ${shq(SECRET)} ${D} || true`), "", "no copy of the victim under the service");
  });

  it("a unit name the system already has is refused before anything changes", async () => {
    const other = new SimulatedResource(provider, shippedProvider("service"), { name: "fleet-vendor-probe" });
    await assert.rejects(
      other.up(
        serviceInputs(
          service({ name: "fleet-vendor-probe", env: { APP_HOST: hostAddress(HOST), APP_PORT: String(PORT + 1) } }),
        ),
      ),
      /the system already has a unit fleet-vendor-probe\.service/,
    );
    assert.equal(await sh(HOST, `test -e /etc/systemd/system/fleet-vendor-probe.service && echo yes || echo no`), "no");
    assert.equal(await victims(), baseline);
  });

  it("a resource replaced by one on the same machine under another address leaves the new one's folder and unit", async () => {
    const releaseBefore = await serving();
    // The replacement (this machine as ::ffff:127.0.0.12) deploys into the same folder first,
    // then the replaced resource's delete runs.
    const alias = { ...connectionFor(HOST), host: `::ffff:${hostAddress(HOST)}` };
    const replacement = new SimulatedResource(provider, shippedProvider("service"), { name: SERVICE });
    await replacement.up(serviceInputs(service({ connection: alias })));
    await resource.destroy();
    assert.equal(await sh(HOST, `systemctl is-active ${SERVICE}`), "active", "the replacement's unit runs");
    assert.equal(await sh(HOST, `test -d ${D}/releases && echo kept`), "kept");
    assert.equal(await serving(), releaseBefore);
    assert.equal(await sh(HOST, `sed -n 's/^id=//p' ${D}/.owner`), `::ffff:${hostAddress(HOST)}:22/${SERVICE}`);
    resource = replacement;
  });
});
