/**
 * Stack config for the engine tests, in the shape users write (`fleet:hosts`, `fleet:services`):
 * test servers from the inventory (read when called: in hooks, never at module load) and the
 * pyapp fixture deployed from a throwaway git repository, bound to its server's address.
 */
import * as fs from "fs";
import * as path from "path";
import { hostAddress, loadInventory, sh } from "../../support/fleet";

/** Where the engine tests deploy on the hosts: no other test file uses it. */
export const ROOT = "/srv/fleet-engine";

export const PYAPP = path.resolve(__dirname, "..", "..", "fixtures", "apps", "pyapp");

/** `fleet:hosts` entries for test servers, with the inventory's key and known_hosts. */
export function hostsConfig(names: readonly string[]): Record<string, unknown> {
  const inv = loadInventory();
  return Object.fromEntries(
    names.map((n) => [
      n,
      { address: hostAddress(n), user: "root", privateKeyFile: inv.ssh_key, knownHostsFile: inv.known_hosts },
    ]),
  );
}

export interface PyService {
  /** One host (`host:`) or several (`hosts:`). */
  readonly hosts: readonly string[];
  readonly repo: string;
  readonly port: number;
  readonly healthTimeout?: string;
  readonly extra?: Record<string, unknown>;
}

/**
 * The test servers share the machine's network namespace, so a service on several of them cannot
 * bind 127.0.0.1 (the copies would collide) and its config has one `env` and one health URL for
 * every host. Each host resolves this name to its own address instead (`selfAlias`), as
 * 127.0.0.1 would on separate machines.
 */
export const SELF = "fleet-engine-self";

/** Adds (true) or removes (false) the SELF name in each host's /etc/hosts. */
export async function selfAlias(hosts: readonly string[], present: boolean): Promise<void> {
  await Promise.all(
    hosts.map((h) =>
      sh(h, `sed -i '/ ${SELF}$/d' /etc/hosts` + (present ? ` && echo '${hostAddress(h)} ${SELF}' >> /etc/hosts` : "")),
    ),
  );
}

/**
 * A `fleet:services` entry for the pyapp on its port, bound to its server's address (one host)
 * or to SELF (several hosts: call selfAlias first).
 */
export function pyService(s: PyService): Record<string, unknown> {
  const one = s.hosts.length === 1;
  const bind = one ? hostAddress(s.hosts[0]!) : SELF;
  const probe = bind;
  return {
    ...(one ? { host: s.hosts[0] } : { hosts: [...s.hosts], rollout: { batch: "100%" } }),
    root: ROOT,
    source: { git: s.repo, ref: "main" },
    start: "python3 app.py",
    env: { APP_HOST: bind, APP_PORT: String(s.port) },
    health: {
      url: `http://${probe}:${s.port}/api/health`,
      version: { url: `http://${probe}:${s.port}/api/version`, field: "commit" },
      timeout: s.healthTimeout ?? "20s",
    },
    keepReleases: 5,
    ...s.extra,
  };
}

/**
 * The pyapp's app.py, changed to fail its health check (500) for its first `slowMs` after it
 * starts, and for good when `slowMs` is Infinity; its version endpoint answers at once.
 */
export function slowHealthApp(slowMs: number): string {
  const source = fs.readFileSync(path.join(PYAPP, "app.py"), "utf8");
  const seconds = Number.isFinite(slowMs) ? String(slowMs / 1000) : "float('inf')";
  const patched = source
    .replace("class Handler", `import time\nSTARTED = time.time()\n\n\nclass Handler`)
    .replace('if MODE == "unhealthy":', `if MODE == "unhealthy" or time.time() - STARTED < ${seconds}:`);
  if (patched === source) throw new Error("slowHealthApp: the pyapp's app.py no longer has the lines it patches");
  return patched;
}
