import * as fs from "fs";
import * as os from "os";
import { configInvalid, type FleetConfig } from "./schema";
import { parseDuration } from "../model/duration";
import type { SshConnection } from "../transport/connection";
import { hostKeyFromKnownHosts } from "../transport/known-hosts";

/**
 * From validated config to SSH connections: key files read and host keys looked up here, on the
 * deploying machine. Used by the program (index.ts) and by the operator scripts (status).
 */

export function readFileFor(field: string, file: string): string {
  // "~/.ssh/…" as users write it in config; Node does not expand it.
  const path = file.startsWith("~/") ? `${os.homedir()}${file.slice(1)}` : file;
  try {
    return fs.readFileSync(path, "utf8");
  } catch (err) {
    throw configInvalid([`${field}: cannot read ${file}: ${(err as Error).message}`]);
  }
}

export function privateKeyFor(name: string, cfg: FleetConfig, file: string | undefined): string {
  return file ? readFileFor(`hosts.${name}.privateKeyFile`, file) : cfg.privateKeys[name]!;
}

/** The SSH connection for one existing host (and its bastion); key material read here, then kept secret. */
export function connectionFor(name: string, cfg: FleetConfig): SshConnection {
  const h = cfg.hosts[name]!;
  if (h.kind !== "existing") throw configInvalid([`hosts.${name}: a ${h.kind} host has no configured connection`]);
  let hostKey = h.hostKey;
  if (!hostKey) {
    hostKey = hostKeyFromKnownHosts(readFileFor(`hosts.${name}.knownHostsFile`, h.knownHostsFile!), h.address, h.port);
    if (!hostKey) {
      throw configInvalid([
        `hosts.${name}.knownHostsFile: no key for ${h.address}:${h.port} in ${h.knownHostsFile} (hashed entries cannot be read; pin hostKey instead)`,
      ]);
    }
  }
  return {
    host: h.address,
    port: h.port,
    user: h.user,
    privateKey: privateKeyFor(name, cfg, h.privateKeyFile),
    hostKey,
    ...(h.connectTimeout ? { connectTimeoutMs: parseDuration(h.connectTimeout, `hosts.${name}.connectTimeout`) } : {}),
    ...(h.jump ? { jump: connectionFor(h.jump, cfg) } : {}),
  };
}
