/**
 * The file backend's stack locks of one stack, judged (decisions/stack-lock.ts). Only `file://`
 * backends keep them where fleet can read them; other backends are left to the CLI.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { judgeStackLock, parseStackLock, type StackLockVerdict } from "../decisions/stack-lock";

/**
 * Whether `pid` still runs. A zombie does not: a killed CLI whose parent died too waits to be
 * reaped by init, and some inits (containers, microVMs) never reap it, yet signal 0 reaches it.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc (macOS): signal 0 is all there is
  }
}

/** `backendDir` holds `.pulumi/`; a project-scoped stack's locks live under organization/<project>/<stack>. */
export function stackLocks(backendDir: string, project: string, stack: string): StackLockVerdict[] {
  const dir = path.join(backendDir, ".pulumi", "locks", "organization", project, stack);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .flatMap((f) => {
      const owner = parseStackLock(fs.readFileSync(path.join(dir, f), "utf8"));
      return owner ? [judgeStackLock(owner, { hostname: os.hostname(), alive })] : [];
    });
}
