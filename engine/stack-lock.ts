/**
 * The file backend's stack locks of one stack, judged (decisions/stack-lock.ts). Only `file://`
 * backends keep them where fleet can read them; other backends are left to the CLI.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { judgeStackLock, parseStackLock, type StackLockVerdict } from "../decisions/stack-lock";
import { processAlive as alive } from "./process-alive";

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
