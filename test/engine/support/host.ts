/**
 * What the engine tests read back from the test servers: what a service serves, where its
 * `current` points, its deploy.log, and how many SSH logins a server has accepted (read with
 * `docker exec`, so that counting opens no SSH connection of its own).
 */
import { execFile } from "child_process";
import { sh, testHost } from "../../support/fleet";

/** The JSON a service's version endpoint answers, or undefined when nothing answers. */
export async function served(address: string, port: number): Promise<{ commit: string; release: string } | undefined> {
  try {
    const res = await fetch(`http://${address}:${port}/api/version`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as { commit: string; release: string };
  } catch {
    return undefined;
  }
}

/** The release `<root>/<service>/current` points at on a host ("" when there is none). */
export async function currentRelease(hostName: string, root: string, service: string): Promise<string> {
  const link = await sh(hostName, `readlink ${root}/${service}/current || true`);
  return link.replace(/^releases\//, "");
}

/** The release directories a host keeps for a service. */
export async function releaseDirs(hostName: string, root: string, service: string): Promise<string[]> {
  const out = await sh(hostName, `ls -1 ${root}/${service}/releases 2>/dev/null || true`);
  return out.split("\n").filter(Boolean).sort();
}

/** The lines of a service's deploy.log. */
export async function deployLog(hostName: string, root: string, service: string): Promise<string[]> {
  return (await sh(hostName, `cat ${root}/${service}/deploy.log 2>/dev/null || true`)).split("\n").filter(Boolean);
}

function docker(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("docker", args, { encoding: "utf8", maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`docker ${args.join(" ")}: ${err.message} ${stderr}`)) : resolve(stdout),
    ),
  );
}

/** Logins sshd has accepted for `user` on a test server so far (its journal, via docker exec). */
export async function sshLogins(hostName: string, user = "root"): Promise<number> {
  const journal = await docker(["exec", testHost(hostName).container, "journalctl", "-u", "ssh", "--no-pager", "-q"]);
  return journal.split("\n").filter((l) => l.includes(`Accepted publickey for ${user} `)).length;
}

/** Removes what an earlier run of an engine test left on a host: the services' units and the root. */
export async function wipe(hostName: string, root: string, services: readonly string[]): Promise<void> {
  const units = services.map((s) => `${s}.service`).join(" ");
  await sh(
    hostName,
    `for u in ${units}; do systemctl disable --now "$u" 2>/dev/null || true; rm -f "/etc/systemd/system/$u"; done; ` +
      `systemctl daemon-reload; rm -rf ${root}`,
  );
}

/** The version endpoint sampled every 100 ms until stopped: what a user of the service saw. */
export class VersionSampler {
  readonly samples: { at: number; commit: string | undefined }[] = [];
  private stopped = false;
  private loop: Promise<void>;

  constructor(
    readonly address: string,
    readonly port: number,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const t = Date.now();
      const v = await served(this.address, this.port);
      this.samples.push({ at: t, commit: v?.commit });
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** The distinct answers in order (consecutive repeats collapsed; no answer is "none"). */
  sequence(): string[] {
    const seq: string[] = [];
    for (const s of this.samples) {
      const v = s.commit ?? "none";
      if (seq[seq.length - 1] !== v) seq.push(v);
    }
    return seq;
  }
}
