/**
 * Running fleet's service scripts with the local /bin/sh in a temporary root, as the unit tests of
 * the fault fixes and of the watchdog do: a ServiceSpec for this user and a runner with stand-ins
 * on PATH (curl never answers; systemctl, when asked for, only logs to `<dir>/systemctl.log`).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { serviceLayout } from "../../commands/layout";
import { renderUnit } from "../../commands/unit";
import type { ServiceSpec } from "../../model/service";

const user = os.userInfo().username;

/** A service "svc" under `root`, run as this user, with a health URL nothing answers. */
export function localServiceSpec(root: string, unitName: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  const layout = serviceLayout(root, "svc", unitName);
  return {
    name: "svc",
    connection: { host: "127.0.0.1", user, privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" },
    host: "127.0.0.1",
    root,
    unitName,
    runAs: user,
    releaseId: "0123456789ab",
    commit: "0123456789abcdef0123456789abcdef01234567",
    source: { kind: "path", path: "/src", exclude: [] },
    start: "true",
    env: {},
    secretEnv: {},
    unit: renderUnit({ name: "svc", runAs: user, start: "true", layout }),
    health: { url: "http://127.0.0.1:1/", expectStatus: 200, timeoutMs: 100, intervalMs: 50 },
    keepReleases: 5,
    breakStaleLock: false,
    stepTimeoutMs: 10_000,
    minFreeDiskMb: 0,
    ...over,
  };
}

/** Runs a script as fleet does (on stdin of /bin/sh), with the stand-ins in `<dir>/bin` first on PATH. */
export function runLocalScript(
  script: string,
  dir: string,
  options: { stubSystemctl?: boolean } = {},
): { code: number; stdout: string; stderr: string } {
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, "curl"), "#!/bin/sh\nexit 7\n", { mode: 0o755 });
  if (options.stubSystemctl) {
    fs.writeFileSync(
      path.join(bin, "systemctl"),
      `#!/bin/sh\necho "$*" >> ${JSON.stringify(path.join(dir, "systemctl.log"))}\n` +
        `case "$1" in show) echo NRestarts=0; echo MainPID=0;; is-active) exit 3;; esac\nexit 0\n`,
      { mode: 0o755 },
    );
  }
  const r = spawnSync("/bin/sh", ["-s"], {
    input: script,
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}` },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
