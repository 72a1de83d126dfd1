import { healthSpec, type HealthArgs } from "../../components/service";
import { serviceLayout } from "../../commands/layout";
import { renderUnit } from "../../commands/unit";
import type { ServiceSpec } from "../../model/service";
import { resolveDepsHash, resolveRelease, type SourceArgs } from "../../source/resolve";
import type { SshConnection } from "../../transport/connection";
import { secret, type Props } from "./provider-host";

export interface ServiceCase {
  readonly name: string;
  readonly connection: SshConnection;
  readonly source: SourceArgs;
  readonly start: string;
  readonly health: HealthArgs;
  readonly env?: Record<string, string>;
  readonly secretEnv?: Record<string, string>;
  readonly install?: { run: string; when: string[] };
  readonly build?: string;
  readonly migrate?: string;
  readonly keepReleases?: number;
  readonly root?: string;
  readonly runAs?: string;
  readonly breakStaleLock?: boolean;
  readonly minFreeDiskMb?: number;
}

/**
 * The provider inputs the Service component would register for `c`, built with the same pure
 * functions, with `connection` and `secretEnv` marked secret as the SDK sends them.
 */
export function serviceSpec(c: ServiceCase): ServiceSpec {
  const release = resolveRelease(c.source, c.build, `services.${c.name}`);
  const root = c.root ?? "/srv/fleet-test";
  const runAs = c.runAs ?? c.connection.user;
  return JSON.parse(
    JSON.stringify({
      name: c.name,
      connection: c.connection,
      host: c.connection.host,
      root,
      unitName: c.name,
      runAs,
      releaseId: release.releaseId,
      commit: release.commit,
      source: release.source,
      install: c.install ? { ...c.install, hash: resolveDepsHash(release, c.install.when, c.install.run) } : undefined,
      build: c.build,
      migrate: c.migrate,
      start: c.start,
      env: c.env ?? {},
      secretEnv: c.secretEnv ?? {},
      unit: renderUnit({ name: c.name, runAs, start: c.start, layout: serviceLayout(root, c.name, c.name) }),
      health: healthSpec(c.health, `services.${c.name}`),
      keepReleases: c.keepReleases ?? 5,
      breakStaleLock: c.breakStaleLock ?? false,
      stepTimeoutMs: 120_000,
      minFreeDiskMb: c.minFreeDiskMb ?? 64,
    }),
  ) as ServiceSpec;
}

export function serviceInputs(c: ServiceCase): Props {
  const spec = serviceSpec(c);
  return { ...spec, connection: secret(spec.connection), secretEnv: secret(spec.secretEnv) };
}
