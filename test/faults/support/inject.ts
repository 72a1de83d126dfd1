/**
 * Fault injection with synchronisation points, so that a fault lands inside the phase it is
 * meant for instead of "sleep and hope".
 *
 * `fault-gate <point>` is a tiny script installed on the servers. Unarmed it returns at once. The
 * test arms a point (`arm`) with a mode; the next process reaching that point consumes the arm,
 * writes `at-<point>` (its pid) and then, by mode:
 *   wait        blocks until the test writes `go-<point>`: the test injects its fault meanwhile;
 *   hang        blocks forever: a hung command, only fleet's timeout can end it;
 *   crash       exits 3 at once: an app that crashes as it starts;
 *   crash-later the app starts and answers HTTP 500 for 1.5 s, then exits 3 (a crash during the
 *               health check).
 * The points sit where the phases run their work:
 *   upload   a `tar` wrapper (the upload is `tar -xzf - -C <staging>`): the archive stream stalls
 *            in the SSH channel while the test acts;
 *   install, build, migrate   the user's own commands start with `fault-gate <phase>`;
 *   backup   a `pg_dump` wrapper (the backup script runs pg_dump);
 *   switch   a `systemctl` wrapper on `daemon-reload`, which the switch runs last, after moving
 *            `current`, env and unit into place (each cell's unit differs, so it always runs); and
 *            (`switch-save`) a `cp` wrapper on the switch's first step, saving the unit for the
 *            rollback, before anything is written;
 *   restart  the same wrapper on `systemctl restart`;
 *   health   the service's start command (`fault-gate start`): the app has not bound its port yet
 *            while the health gate polls.
 * The wrappers only pause (or hang) the real command; unarmed they exec it unchanged.
 */
import { execFileSync, spawnSync } from "child_process";
import type { ExitInfo, ProviderHost } from "../../support/provider-host";
import { docker, sleep, type Server } from "./servers";

export const STATE_DIR = "/var/lib/fleet-faults";
export type GatePoint =
  "upload" | "install" | "build" | "migrate" | "backup" | "switch-save" | "switch" | "restart" | "start";
export type GateMode = "wait" | "hang" | "crash" | "crash-later";

const GATE = `#!/bin/sh
# fault-gate <point>: a synchronisation point of fleet's fault suite (test/faults/support/inject.ts).
S=${STATE_DIR}
p=$1
mv "$S/arm-$p" "$S/fired-$p.$$" 2>/dev/null || exit 0
mode=$(cat "$S/fired-$p.$$"); rm -f "$S/fired-$p.$$"
echo $$ > "$S/at-$p.tmp" && mv "$S/at-$p.tmp" "$S/at-$p"
case "$mode" in
  crash) echo "fault-gate: $p: crashing at start on purpose" >&2; exit 3;;
  crash-later) echo "fault-gate: $p: up but unhealthy, crashing in 1.5 s" >&2
    APP_MODE=unhealthy timeout -s KILL 1.5 python3 app.py; echo "fault-gate: $p: crashed" >&2; exit 3;;
  hang) echo "fault-gate: $p: hanging on purpose" >&2; while :; do sleep 1; done;;
  *) while [ ! -e "$S/go-$p" ]; do sleep 0.05; done; rm -f "$S/go-$p"; exit 0;;
esac
`;

const TAR = `#!/bin/sh
# fault suite wrapper: the upload (tar -xzf - -C <root>/<svc>/.staging/<release>) passes fault-gate upload
case " $* " in *" -xzf - -C "*/.staging/*) /usr/local/bin/fault-gate upload || exit $?;; esac
exec /usr/bin/tar "$@"
`;

const SYSTEMCTL = `#!/bin/sh
# fault suite wrapper: the switch's daemon-reload passes fault-gate switch, a restart fault-gate restart
case "$1" in
  daemon-reload) /usr/local/bin/fault-gate switch || exit $?;;
  restart) /usr/local/bin/fault-gate restart || exit $?;;
esac
exec /usr/bin/systemctl "$@"
`;

const CP = `#!/bin/sh
# fault suite wrapper: the switch saving the unit for the rollback passes fault-gate switch-save
case "$*" in *"/.rollback/unit") /usr/local/bin/fault-gate switch-save || exit $?;; esac
exec /usr/bin/cp "$@"
`;

const PG_DUMP = `#!/bin/sh
# fault suite wrapper: the backup's pg_dump passes fault-gate backup
/usr/local/bin/fault-gate backup || exit $?
exec /usr/bin/pg_dump "$@"
`;

/** Installs the gate and the wrappers on a server (idempotent) and clears any arm. */
export async function installGates(server: Server): Promise<void> {
  const files: Record<string, string> = {
    "/usr/local/bin/fault-gate": GATE,
    "/usr/local/bin/tar": TAR,
    "/usr/local/bin/systemctl": SYSTEMCTL,
    "/usr/local/bin/pg_dump": PG_DUMP,
    "/usr/local/bin/cp": CP,
  };
  for (const [file, text] of Object.entries(files)) {
    await server.sh(`cat > ${file}.new && chmod 755 ${file}.new && mv -f ${file}.new ${file}`, text);
  }
  await server.sh(`mkdir -p ${STATE_DIR} && rm -f ${STATE_DIR}/*`);
}

export async function removeGates(server: Server): Promise<void> {
  await server.exec(
    `rm -f /usr/local/bin/fault-gate /usr/local/bin/tar /usr/local/bin/systemctl /usr/local/bin/pg_dump /usr/local/bin/cp; rm -rf ${STATE_DIR}`,
  );
}

/**
 * The install, build, migrate and start gates run as the service's account: a service with a
 * `runAs` of its own needs the gates' state folder writable by that account's group (root's gates
 * need nothing). `closeGates` gives it back to root alone.
 */
export async function openGates(server: Server, user: string): Promise<void> {
  await server.sh(`chgrp "$(id -gn ${user})" ${STATE_DIR} && chmod 0775 ${STATE_DIR}`);
}

export async function closeGates(server: Server): Promise<void> {
  await server.exec(`chgrp root ${STATE_DIR} && chmod 0755 ${STATE_DIR}`);
}

export async function arm(server: Server, point: GatePoint, mode: GateMode): Promise<void> {
  await server.sh(
    `rm -f ${STATE_DIR}/at-${point} ${STATE_DIR}/go-${point}; printf %s ${mode} > ${STATE_DIR}/arm-${point}`,
  );
}

/** Disarms everything (a point the deploy never reached must not fire in a later cell). */
export async function disarm(server: Server): Promise<void> {
  await server.exec(`rm -f ${STATE_DIR}/arm-* ${STATE_DIR}/go-*`);
}

/**
 * Waits until a process reached `point` (its `at-` marker), and returns that process's pid. If
 * the deploy ends first, the fault could not land in the phase: that is an error naming how
 * the deploy ended.
 */
export async function arrived(
  server: Server,
  point: GatePoint,
  deploy: Promise<unknown>,
  timeoutMs = 60_000,
): Promise<number> {
  let ended: string | undefined;
  deploy.then(
    () => (ended = "succeeded"),
    (e: Error) => (ended = `failed: ${e.message.split("\n").slice(0, 6).join(" | ")}`),
  );
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await server.exec(
      `for i in $(seq 40); do [ -e ${STATE_DIR}/at-${point} ] && exec cat ${STATE_DIR}/at-${point}; sleep 0.05; done; exit 1`,
    );
    if (r.code === 0) return Number(r.stdout.trim());
    if (ended)
      throw new Error(`the deploy ${ended} before reaching the "${point}" sync point: the fault could not land`);
  }
  throw new Error(`nothing reached the "${point}" sync point within ${timeoutMs} ms`);
}

export async function go(server: Server, point: GatePoint): Promise<void> {
  await server.exec(`touch ${STATE_DIR}/go-${point}`);
}

/** True while the process that reached the gate still runs (an orphan, or a hung command). */
export async function alive(server: Server, pid: number): Promise<boolean> {
  return (await server.exec(`kill -0 ${pid}`)).code === 0;
}

/** Waits for a process to end; false if it still runs after `timeoutMs`. */
export async function ended(server: Server, pid: number, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await alive(server, pid))) return true;
    await sleep(100);
  }
  return false;
}

/**
 * Fault 1: the SSH connection dropped. Kills sshd's session processes on the server: the
 * deploying connection dies as a network failure would kill it; the listener stays up, so the
 * provider can reconnect. Returns how many sessions were killed (the fault must have hit one).
 */
export async function dropSsh(server: Server): Promise<number> {
  const r = await server.exec(
    `n=$(pgrep -c -f '^sshd: root@notty' || true); pkill -KILL -f '^sshd: root' || true; echo "$n"`,
  );
  return Number(r.stdout.trim() || 0);
}

/** Fault 2, first half: the server stops at once (processes killed, no shutdown). */
export async function killServer(server: Server): Promise<void> {
  const r = await docker(["kill", server.container]);
  if (r.code !== 0) throw new Error(`docker kill ${server.container}: ${r.stderr}`);
}

/** Fault 2, second half: the server boots again and sshd answers. */
export async function startServer(server: Server): Promise<void> {
  const r = await docker(["start", server.container]);
  if (r.code !== 0) throw new Error(`docker start ${server.container}: ${r.stderr}`);
  await server.waitSshd();
}

/**
 * Fault 4: a small file system at `dir` (tmpfs of `sizeMb`, mounted in the server's mount
 * namespace, so systemd's services and sshd's sessions see it).
 */
export async function mountSmallFs(server: Server, dir: string, sizeMb: number): Promise<void> {
  const pid = await server.pid();
  await server.sh(`mkdir -p ${dir}`);
  execFileSync("nsenter", [
    "-t",
    String(pid),
    "-m",
    "--",
    "mount",
    "-t",
    "tmpfs",
    "-o",
    `size=${sizeMb}m,mode=755`,
    "tmpfs",
    dir,
  ]);
}

export async function unmountSmallFs(server: Server, dir: string): Promise<void> {
  if (!(await server.running())) return;
  const pid = await server.pid();
  spawnSync("nsenter", ["-t", String(pid), "-m", "--", "umount", "-l", dir]);
}

/** Fills the file system holding `dir` to the last block; returns the free KiB left (0). */
export async function fillDisk(server: Server, dir: string): Promise<number> {
  await server.exec(
    `dd if=/dev/zero of=${dir}/.fault-fill bs=1M 2>/dev/null; dd if=/dev/zero of=${dir}/.fault-fill-small bs=4k 2>/dev/null; sync`,
  );
  return Number(await server.sh(`df -Pk ${dir} | awk 'NR==2{print $4}'`));
}

export async function freeDisk(server: Server, dir: string): Promise<void> {
  await server.sh(`rm -f ${dir}/.fault-fill ${dir}/.fault-fill-small`);
}

/**
 * Fault 6: the deployer dies. SIGKILLs the provider host process driving the deploy (the
 * process `pulumi up` runs fleet's provider in, as the CLI's own death or an OOM kill would end
 * it) and waits for it to be gone: its SSH connections close with it.
 */
export async function killDeployer(deployer: ProviderHost, timeoutMs = 10_000): Promise<ExitInfo> {
  process.kill(deployer.pid, "SIGKILL");
  const deadline = Date.now() + timeoutMs;
  while (!deployer.exited) {
    if (Date.now() > deadline)
      throw new Error(`the provider host (pid ${deployer.pid}) still runs ${timeoutMs} ms after SIGKILL`);
    await sleep(20);
  }
  return deployer.exited;
}

/** True while the process a lock's `presence=<pid> <start time>` names still runs on the server. */
export async function presenceRuns(server: Server, presence: string): Promise<boolean> {
  const [pid, start] = presence.split(" ");
  const r = await server.exec(`cut -d' ' -f22 /proc/${Number(pid)}/stat 2>/dev/null`);
  return r.code === 0 && r.stdout.trim() === start;
}
