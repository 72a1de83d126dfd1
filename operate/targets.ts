/**
 * What the operating commands (logs, exec, reboot) act on, read from the stack's config the way
 * `npm run status` reads it: the services and hosts named on the command line, checked against
 * the config (an unknown name lists the known ones), and the SSH connection of each host.
 */
import { configInvalid, parseFleetConfig, type FleetConfig } from "../config/schema";
import { connectionFor } from "../config/connections";
import { fleetConfigOf, secretsProblem, unreadableKeyFor, wholeFleetSecrets } from "../config/stack-file";
import { fleetError } from "../model/errors";
import type { SshConnection } from "../transport/connection";

export interface OperatorConfig {
  readonly cfg: FleetConfig;
  /** The stack's secret values this run knows (secretEnv, database passwords): redacted from all it prints. */
  readonly secrets: readonly string[];
  /** The hosts whose private key is only ciphertext here, with what to do. */
  readonly unreadableHosts: Readonly<Record<string, string>>;
}

/** The stack's config for an operating command; a whole `fleet:` key that is only ciphertext refuses. */
export function loadOperatorConfig(command: string, stack: string, cwd: string): OperatorConfig {
  const loaded = fleetConfigOf(stack, cwd);
  const whole = wholeFleetSecrets(loaded.unreadableSecrets);
  if (whole.length > 0) throw configInvalid([`${command}: ${secretsProblem(loaded, whole)}`]);
  const cfg = parseFleetConfig(loaded.raw);
  const unreadableHosts: Record<string, string> = {};
  for (const host of Object.keys(cfg.hosts)) {
    const secret = unreadableKeyFor(host, cfg, loaded.unreadableSecrets);
    if (secret) unreadableHosts[host] = secretsProblem(loaded, [secret], `give hosts.${host}.privateKeyFile instead`);
  }
  // A secret known only as ciphertext cannot be redacted: commands that print remote output refuse it.
  const envSecrets = loaded.unreadableSecrets.filter((s) => s.key === "fleet:secretEnv");
  if (envSecrets.length > 0) throw configInvalid([`${command}: ${secretsProblem(loaded, envSecrets)}`]);
  return { cfg, secrets: secretValuesOf(cfg), unreadableHosts };
}

/** Every secret value in the config, for redaction. */
export function secretValuesOf(cfg: FleetConfig): string[] {
  return [
    ...Object.values(cfg.secretEnv).flatMap((env) => Object.values(env)),
    ...Object.values(cfg.dbPasswords),
    ...Object.values(cfg.privateKeys),
  ].filter((v): v is string => typeof v === "string" && v !== "");
}

/** `--hosts web1,web2` as names (empty entries dropped). */
export function listFlag(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function known(names: readonly string[]): string {
  return names.length ? names.join(", ") : "none";
}

/** A usage problem about a name: what was asked, and what exists. */
function unknownName(what: string, name: string, names: readonly string[]): Error {
  return fleetError(
    "config",
    `unknown ${what} "${name}": the stack's ${what}s are ${known(names)}`,
    `Name one of those (npm run status lists where each service runs).`,
  );
}

/** The hosts a service runs on, in config order. */
export function hostsOf(cfg: FleetConfig, service: string): string[] {
  const s = cfg.services[service]!;
  return s.host ? [s.host] : [...s.hosts!];
}

/** One service on one host, with what the host-side commands need to find it. */
export interface Placement {
  readonly service: string;
  readonly host: string;
  readonly root: string;
  readonly unitName: string;
  /** Whom the service runs as: `runAs`, else the host's SSH user. */
  readonly runAs: string;
  readonly proxied: boolean;
  readonly healthUrl: string;
}

/**
 * The places `service` runs, narrowed to `onlyHosts` when given. Refuses an unknown service, a
 * host that is not in the config, and a host the service does not run on, naming the known ones.
 */
export function placementsOf(cfg: FleetConfig, service: string, onlyHosts?: readonly string[]): Placement[] {
  if (!Object.hasOwn(cfg.services, service)) throw unknownName("service", service, Object.keys(cfg.services));
  const runsOn = hostsOf(cfg, service);
  for (const h of onlyHosts ?? []) {
    if (!Object.hasOwn(cfg.hosts, h)) throw unknownName("host", h, Object.keys(cfg.hosts));
    if (!runsOn.includes(h))
      throw fleetError(
        "config",
        `service "${service}" does not run on host "${h}": it runs on ${known(runsOn)}`,
        "Name one of those hosts, or leave --host out for all of them.",
      );
  }
  const s = cfg.services[service]!;
  return runsOn
    .filter((h) => !onlyHosts || onlyHosts.includes(h))
    .map((host) => {
      const h = cfg.hosts[host]!;
      return {
        service,
        host,
        root: s.root,
        unitName: s.unitName ?? service,
        runAs: s.runAs ?? h.user,
        proxied: s.proxy !== undefined,
        healthUrl: s.health.url,
      };
    });
}

/** The hosts named (all of the config's when none are), each checked; in config order. */
export function selectHosts(cfg: FleetConfig, names?: readonly string[]): string[] {
  const all = Object.keys(cfg.hosts);
  for (const n of names ?? []) if (!all.includes(n)) throw unknownName("host", n, all);
  return names ? all.filter((h) => names.includes(h)) : all;
}

/** The services named (all of the config's when none are), each checked; in config order. */
export function selectServices(cfg: FleetConfig, names?: readonly string[]): string[] {
  const all = Object.keys(cfg.services);
  for (const n of names ?? []) if (!all.includes(n)) throw unknownName("service", n, all);
  return names ? all.filter((s) => names.includes(s)) : all;
}

/** The services that run on `host`, in config order. */
export function servicesOn(cfg: FleetConfig, host: string): string[] {
  return Object.keys(cfg.services).filter((s) => hostsOf(cfg, s).includes(host));
}

/** The connection to `host`, refused (with what to do) for an hcloud host or a key only known as ciphertext. */
export function operatorConnection(op: OperatorConfig, host: string): SshConnection {
  const h = op.cfg.hosts[host]!;
  if (h.kind !== "existing")
    throw fleetError(
      "config",
      `host "${host}" is an hcloud server: its address is only in the stack's state`,
      "Run this for the hosts with an address in config (kind: existing), or ssh to it by its address from pulumi stack output.",
    );
  if (Object.hasOwn(op.unreadableHosts, host))
    throw fleetError("config", `host "${host}": ${op.unreadableHosts[host]}`, "");
  return connectionFor(host, op.cfg);
}
