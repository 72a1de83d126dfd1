import * as fs from "fs";

/**
 * Whether `pid` still runs. A zombie does not: a killed process whose parent died too waits to be
 * reaped by init, and some inits (containers, microVMs, this CI machine's) never reap it, yet
 * signal 0 reaches it. Used for stack locks and for the test runs' leases on the test servers.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  const state = processState(pid);
  return state === undefined || state !== "Z"; // undefined: no /proc (macOS), signal 0 is all there is
}

/** The state letter `/proc/<pid>/stat` gives (`R`, `S`, `Z`…), or undefined where it cannot be read. */
export function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command name in parentheses, which may itself hold ") ".
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}
