import * as pulumi from "@pulumi/pulumi";
import { Host, type HostArgs } from "./components/host";
import { Service, plannedRelease, type ServiceArgs } from "./components/service";
import { DatabaseBackup } from "./components/database-backup";
import type { SourceArgs } from "./source/resolve";
import { GoldenImage } from "./components/golden-image";
import type { ImageArtifact } from "./providers/image/model";
import { planBatches } from "./decisions/rollout";
import { serviceResourceName } from "./model/resource-names";
import { parseFleetConfig, type FleetConfig } from "./config/schema";
import { backupsProtecting, restoreBackupOf } from "./config/restore-on-rollback";
import { connectionFor, privateKeyFor, readFileFor } from "./config/connections";

/**
 * The fleet program: reads and validates the stack config (all of it, before any resource
 * exists), then builds one Host per `fleet:hosts` entry and one Service per `fleet:services`.
 */

/** The Host component's arguments for one configured host. */
function hostArgs(name: string, cfg: FleetConfig, images: Record<string, GoldenImage>): HostArgs {
  const h = cfg.hosts[name]!;
  if (h.kind === "existing") {
    return { connection: pulumi.secret(connectionFor(name, cfg)), ...(h.bootstrap ? { bootstrap: h.bootstrap } : {}) };
  }
  return {
    kind: "hcloud",
    serverType: h.serverType,
    location: h.location,
    image: h.image ?? images[h.goldenImage!]!.imageId,
    labels: h.labels,
    sshFrom: h.sshFrom,
    inbound: h.inbound,
    user: h.user,
    privateKey: pulumi.secret(privateKeyFor(name, cfg, h.privateKeyFile)),
    publicKey: readFileFor(`hosts.${name}.publicKeyFile`, h.publicKeyFile).trim(),
    ...(h.bootstrap ? { bootstrap: h.bootstrap } : {}),
  };
}

const config = new pulumi.Config("fleet");
const fleet = parseFleetConfig({
  hosts: config.getObject("hosts"),
  services: config.getObject("services"),
  secretEnv: config.getObject("secretEnv"),
  privateKeys: config.getObject("privateKeys"),
  notify: config.getObject("notify"),
  backups: config.getObject("backups"),
  dbPasswords: config.getObject("dbPasswords"),
  pins: config.getObject("pins"),
  images: config.getObject("images"),
});

// hcloud images first (hcloud hosts may boot from them), then the hosts, then docker images
// (which may be shipped to hosts ahead of the services that run them).
const images: Record<string, GoldenImage> = {};
for (const [name, img] of Object.entries(fleet.images)) {
  if (img.kind === "hcloud") images[name] = new GoldenImage(name, img);
}
const hosts: Record<string, Host> = {};
for (const name of Object.keys(fleet.hosts)) {
  hosts[name] = new Host(name, hostArgs(name, fleet, images));
}
for (const [name, img] of Object.entries(fleet.images)) {
  if (img.kind === "docker") images[name] = new GoldenImage(name, { ...img, hosts: img.hosts.map((h) => hosts[h]!) });
}

type ServiceConfig = FleetConfig["services"][string];

/** A configured service's source, in the Service component's form. */
function sourceOf(s: ServiceConfig): SourceArgs | { image: pulumi.Output<ImageArtifact> } {
  if (s.source.image) return { image: images[s.source.image]!.artifact.apply((a) => a!) };
  return s.source.git
    ? { git: s.source.git, ref: s.source.ref, allowDirty: s.source.allowDirty, paths: s.source.paths }
    : { path: s.source.path!, exclude: s.source.exclude };
}

/** What decides a configured service's release: the same arguments for its Services and its backups. */
function releaseArgs(name: string) {
  const s = fleet.services[name]!;
  return {
    source: sourceOf(s),
    install: s.install,
    build: s.build,
    ...(fleet.pins[name] ? { pin: fleet.pins[name] } : {}),
  };
}

/** The release a service is about to deploy, pins included (a backup is keyed by it and taken before it switches). */
function plannedReleaseId(name: string): pulumi.Input<string> {
  return pulumi.output(plannedRelease(name, releaseArgs(name))).apply((r) => r.releaseId);
}

// Backups first: each is keyed by the releases its services are about to deploy, and those
// services wait for it, so the backup is taken before any of them switches.
const backups: Record<string, DatabaseBackup> = {};
for (const [name, b] of Object.entries(fleet.backups)) {
  backups[name] = new DatabaseBackup(name, {
    host: hosts[b.host]!,
    ...(b.postgres ? { postgres: { ...b.postgres, password: pulumi.secret(fleet.dbPasswords[name]!) } } : {}),
    ...(b.sqlite ? { sqlite: b.sqlite } : {}),
    releases: b.protects.map(plannedReleaseId),
    keep: b.keep,
    keepDays: b.keepDays,
    verifyTables: b.verifyTables,
    ...(b.restore ? { restore: b.restore } : {}),
    ...(b.trigger ? { trigger: b.trigger } : {}),
  });
}

const deployed: Record<string, Service> = {};
for (const [name, s] of Object.entries(fleet.services)) {
  const protectedBy = backupsProtecting(fleet.backups, name).map((b) => backups[b]!);
  const restoreFrom = restoreBackupOf(fleet, name);
  const args = (hostName: string): ServiceArgs => ({
    host: hosts[hostName]!,
    serviceName: name,
    ...releaseArgs(name),
    migrate: s.migrate,
    start: s.start,
    env: s.env,
    secretEnv: pulumi.secret(fleet.secretEnv[name] ?? {}),
    health: s.health,
    keepReleases: s.keepReleases,
    root: s.root,
    runAs: s.runAs,
    unitName: s.unitName,
    breakStaleLock: s.breakStaleLock,
    stepTimeout: s.stepTimeout,
    minFreeDiskMb: s.minFreeDiskMb,
    ...(s.proxy ? { proxy: s.proxy } : {}),
    ...(s.shared ? { shared: s.shared } : {}),
    ...(s.deleteSharedOnDestroy ? { deleteSharedOnDestroy: true } : {}),
    ...(s.hooks ? { hooks: s.hooks } : {}),
    hostName,
    ...(restoreFrom ? { restoreOnRollback: backups[restoreFrom]! } : {}),
    notify: pulumi.secret(
      fleet.notify
        .filter((t) => !t.services || t.services.includes(name))
        .map(({ services: _services, ...target }) => target),
    ),
  });
  if (s.host) {
    deployed[name] = new Service(serviceResourceName(name, s.host, false), args(s.host), { dependsOn: protectedBy });
    continue;
  }
  // Several hosts: one Service per host, in batches; each batch waits for the previous one to
  // pass its health gates, and a failed batch stops the ones after it (the engine's dependsOn).
  let previous: Service[] = [];
  for (const batch of planBatches(s.hosts!, s.rollout ?? { batch: 1, canary: [] })) {
    const current = batch.map(
      (h) => new Service(serviceResourceName(name, h, true), args(h), { dependsOn: [...protectedBy, ...previous] }),
    );
    current.forEach((svc, i) => (deployed[serviceResourceName(name, batch[i]!, true)] = svc));
    previous = current;
  }
}

/** Per service: the release serving, its commit, where, and whether deps were reinstalled. */
export const services = Object.fromEntries(
  Object.entries(deployed).map(([name, svc]) => [
    name,
    {
      releaseId: svc.releaseId,
      commit: svc.commit,
      host: svc.host,
      path: svc.path,
      deployedAt: svc.deployedAt,
      depsReinstalled: svc.depsReinstalled,
    },
  ]),
);

/** Per backup: the newest verified backup and the ones kept. */
export const databaseBackups = Object.fromEntries(
  Object.entries(backups).map(([name, b]) => [
    name,
    { latestId: b.latestId, latestPath: b.latestPath, latestTime: b.latestTime, retained: b.retained },
  ]),
);
