import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as crypto from "crypto";
import * as path from "path";
import { shq } from "../../commands/quote";
import { shippedProvider } from "../../providers/ship";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress, sh, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";
import {
  deploy,
  hostConfig,
  project,
  runScript,
  scriptArgv,
  SERVICE_ROOT,
  type Deployed,
  type Project,
} from "./operate-project";

const SERVICE = "op-exec";
const PORT = 18951;
const HOSTS = ["web1", "web2"];
const FAIL_FLAG = `/tmp/${SERVICE}-fail`;
/** Arguments a shell would love to interpret. */
const HOSTILE = ["it's", 'say "hi"', "$HOME", "`id`", "a;b", "two\nlines", "ünï©ødé ✓", "", "-n", "--help", "*", "\\"];

describe("npm run exec (real servers)", function () {
  this.timeout(300_000);
  const secret = `tok-${crypto.randomBytes(12).toString("hex")}`;
  let deployed: Deployed | undefined;
  let p: Project;
  const exec = (args: string[], input = "") => runScript("exec", ["--stack", "t", ...args], p, input);

  before(async () => {
    deployed = await deploy(SERVICE, HOSTS, PORT, "python3 app.py", secret, "deploy");
    p = project({
      // web1 as root (runuser to the service's user), web2 as deploy (sudo -n, then runuser).
      "fleet:hosts": { web1: hostConfig("web1"), web2: hostConfig("web2", "deploy"), web3: hostConfig("web3") },
      "fleet:secretEnv": { [SERVICE]: { T_TOKEN: secret } },
      "fleet:services": {
        [SERVICE]: {
          hosts: ["web1", "web2", "web3"],
          root: SERVICE_ROOT,
          runAs: "deploy",
          source: { path: "." },
          start: "python3 app.py",
          health: { url: `http://127.0.0.1:${PORT}/api/health` },
        },
      },
    });
    await sshRun("web3", `rm -rf ${SERVICE_ROOT}/${SERVICE}`);
  });

  after(async () => {
    await sshRun("web2", `rm -f ${FAIL_FLAG}`).catch(() => undefined);
    await deployed?.destroy();
  });

  it("passes the command's exit code through", async () => {
    assert.equal((await exec([SERVICE, "--host", "web1", "--", "sh", "-c", "exit 7"])).status, 7);
    assert.equal((await exec([SERVICE, "--host", "web2", "--", "sh", "-c", "exit 0"])).status, 0);
  });

  it("runs as the service's user, in the serving release, with the secret in its environment (never printed)", async () => {
    const hash = crypto.createHash("sha256").update(secret).digest("hex");
    for (const host of HOSTS) {
      const r = await exec([
        SERVICE,
        "--host",
        host,
        "--",
        "sh",
        "-c",
        'id -un; pwd -P; printf %s "$T_TOKEN" | sha256sum',
      ]);
      assert.equal(r.status, 0, r.stderr);
      const serving = await sh(host, `readlink -f ${SERVICE_ROOT}/${SERVICE}/current`);
      assert.equal(r.stdout.toString(), `deploy\n${serving}\n${hash}  -\n`, host);
    }
    const echoed = await exec([SERVICE, "--host", "web1", "--", "sh", "-c", 'echo "token=$T_TOKEN"']);
    assert.equal(echoed.stdout.toString(), "token=[secret]\n");
  });

  it("hostile arguments arrive byte-exact; stdin is piped through", async () => {
    for (const host of HOSTS) {
      const r = await exec([SERVICE, "--host", host, "--", "printf", "%s\\0", ...HOSTILE]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.toString("utf8").split("\0").slice(0, -1), HOSTILE, host);
    }
    const piped = await exec([SERVICE, "--host", "web2", "--", "wc", "-c"], "hello ü\n");
    assert.equal(piped.stdout.toString().trim(), "9");
  });

  it("with a terminal on stdin it runs under a PTY on the host (script(1) gives this test one)", async () => {
    const command = scriptArgv("exec", [
      "--stack",
      "t",
      SERVICE,
      "--host",
      "web1",
      "--",
      "sh",
      "-c",
      "tty; test -t 0 && echo is-a-tty; exit 3",
    ])
      .map(shq)
      .join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: p.dir, env: p.env });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (out += d.toString("utf8")));
    const status = await new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    child.stdin.end();
    assert.match(out, /\/dev\/pts\/\d+\r*\n/, out);
    assert.match(out, /is-a-tty/, out);
    assert.equal(status, 3, `status ${status}: ${out}`);
  });

  it("several hosts: refused without --all-hosts (naming them); --all-hosts runs each in turn, prefixed, with a summary", async () => {
    const refused = await exec([SERVICE, "--", "true"]);
    assert.equal(refused.status, 6);
    assert.match(refused.stderr, /service "op-exec" runs on web1, web2, web3: exec runs on one host/);
    await sh("web2", `touch ${FAIL_FLAG}`);
    const r = await exec([
      SERVICE,
      "--all-hosts",
      "--",
      "sh",
      "-c",
      `echo "as $(id -un)"; test ! -f ${FAIL_FLAG} || exit 5`,
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout.toString(), "web1 | as deploy\nweb2 | as deploy\n");
    assert.match(r.stderr, /^web1 → exit 0$/m);
    assert.match(r.stderr, /^web2 → exit 5$/m);
    assert.match(r.stderr, /^web3 → not run: service "op-exec" is not deployed on host "web3"/m);
  });

  it("a host without the service deployed is a clear error naming it; unknown names list the known ones", async () => {
    const missing = await exec([SERVICE, "--host", "web3", "--", "true"]);
    assert.equal(missing.status, 255);
    assert.match(
      missing.stderr,
      /service "op-exec" is not deployed on host "web3": there is no \/srv\/fleet-test\/op-exec\/current/,
    );
    const unknown = await exec(["nope", "--", "true"]);
    assert.equal(unknown.status, 6);
    assert.match(unknown.stderr, /unknown service "nope": the stack's services are op-exec/);
    const host = await exec([SERVICE, "--host", "web9", "--", "true"]);
    assert.equal(host.status, 6);
    assert.match(host.stderr, /unknown host "web9": the stack's hosts are web1, web2, web3/);
  });
});

/** Runs `command` on `host` as the service's user, deploy. */
const asUser = (host: string, command: string) => sh(host, `runuser -u deploy -- /bin/sh -c ${shq(command)}`);

/** `<path> <owner>:<group> <mode>` and the sha256 of each file (absent ones as "absent"). */
const stateOf = (host: string, files: readonly string[]) =>
  sh(
    host,
    files
      .map((f) => `if [ -e ${f} ]; then stat -c '%n %U:%G %a' ${f}; sha256sum ${f}; else echo "${f} absent"; fi`)
      .join("; "),
  );

/**
 * Issue 29 ("a service's own account never becomes root"): root's shell sourced the env file,
 * whose PATH starts with the service's venv in its release (the account writes it), then ran a
 * bare `runuser`: a `runuser` the account planted there ran as uid 0. Here the account plants one
 * that would change root-only files; on web1 (fleet logs in as root) and web2 (as deploy, through
 * `sudo -n`) the command still runs as deploy, found through the service's PATH, with its env, and
 * the victims' owner, mode and content stay.
 */
describe("npm run exec: a runuser planted in the service's PATH never runs as root (real servers, issue 29)", function () {
  this.timeout(300_000);
  const NAME = "hostile-exec";
  const NAME_PORT = 18953;
  const D = `${SERVICE_ROOT}/${NAME}`;
  /** The service's venv, in its serving release: the account writes it. */
  const VENV = `${D}/current/.venv/bin`;
  const VICTIM = "/etc/fleet-victim-exec";
  const TOUCHED = "/root/fleet-victim-exec";
  const RAN = `${D}/current/.venv/planted-ran`;
  const token = `tok-${crypto.randomBytes(12).toString("hex")}`;
  const victimText = `root's own ${crypto.randomBytes(4).toString("hex")}`;
  const PATH_ENV = `${VENV}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  let provider: ProviderHost;
  let app: GitApp;
  const resources: SimulatedResource[] = [];
  let p: Project;
  const baseline: Record<string, string> = {};
  const victims = (host: string) => stateOf(host, [VICTIM, TOUCHED]);

  before(async () => {
    provider = await ProviderHost.start();
    app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
    for (const host of HOSTS) {
      await sshRun(
        host,
        [
          `systemctl disable --now ${NAME} 2>/dev/null; rm -rf ${D} ${TOUCHED}; rm -f /etc/systemd/system/${NAME}.service`,
          `printf '%s\\n' ${shq(victimText)} > ${VICTIM}; chmod 600 ${VICTIM}`,
        ].join("\n"),
      );
      baseline[host] = await victims(host);
      const resource = new SimulatedResource(provider, shippedProvider("service"), { name: `${NAME}-${host}` });
      resources.push(resource);
      await resource.up(
        serviceInputs({
          name: NAME,
          connection: connectionFor(host),
          root: SERVICE_ROOT,
          runAs: "deploy",
          source: { git: app.dir },
          start: "python3 app.py",
          // The operator's config: the venv first, as a Python service has it.
          env: { APP_HOST: hostAddress(host), APP_PORT: String(NAME_PORT), PATH: PATH_ENV },
          secretEnv: { T_TOKEN: token },
          health: { url: `http://${hostAddress(host)}:${NAME_PORT}/api/health` },
        }),
      );
      // What the account plants in its own venv: a runuser that acts as whoever runs it, then
      // hands over to the real one (so only the victims tell); and a tool of the service's own.
      await asUser(
        host,
        [
          `mkdir -p ${VENV}`,
          `cat > ${VENV}/runuser <<'EOF'`,
          `#!/bin/sh`,
          `id -u >> ${RAN}`,
          `chmod 666 ${VICTIM} 2>/dev/null; echo planted >> ${VICTIM} 2>/dev/null; touch ${TOUCHED} 2>/dev/null`,
          `exec /usr/sbin/runuser "$@"`,
          `EOF`,
          `printf '%s\\n' '#!/bin/sh' 'id -un; pwd -P; printf "%s\\n" "$PATH"; printf %s "$T_TOKEN" | sha256sum' > ${VENV}/svc-tool`,
          `chmod 755 ${VENV}/runuser ${VENV}/svc-tool`,
        ].join("\n"),
      );
    }
    p = project({
      "fleet:hosts": { web1: hostConfig("web1"), web2: hostConfig("web2", "deploy") },
      "fleet:secretEnv": { [NAME]: { T_TOKEN: token } },
      "fleet:services": {
        [NAME]: {
          hosts: HOSTS,
          root: SERVICE_ROOT,
          runAs: "deploy",
          source: { path: "." },
          start: "python3 app.py",
          env: { APP_PORT: String(NAME_PORT), PATH: PATH_ENV },
          health: { url: `http://127.0.0.1:${NAME_PORT}/api/health` },
        },
      },
    });
  });

  after(async () => {
    for (const r of resources) await r.destroy().catch(() => undefined);
    await provider?.stop();
    for (const host of HOSTS) await sshRun(host, `rm -rf ${D} ${VICTIM} ${TOUCHED}`).catch(() => undefined);
  });

  for (const host of HOSTS) {
    it(`${host}: the command runs as deploy, found through the service's PATH, with its env; root's victims are untouched`, async () => {
      const r = await runScript("exec", ["--stack", "t", NAME, "--host", host, "--", "svc-tool"], p);
      assert.equal(r.status, 0, r.stderr);
      const serving = await sh(host, `readlink -f ${D}/current`);
      const hash = crypto.createHash("sha256").update(token).digest("hex");
      assert.equal(r.stdout.toString(), `deploy\n${serving}\n${PATH_ENV}\n${hash}  -\n`);
      assert.equal(await victims(host), baseline[host], "the victims' owner, mode and content");
      assert.equal(await sh(host, `cat ${RAN} 2>/dev/null || echo never`), "never", "the planted runuser never ran");
    });
  }
});
