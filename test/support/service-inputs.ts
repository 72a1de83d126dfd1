import { healthSpec, type HealthArgs } from "../../components/service";
import { serviceLayout } from "../../commands/layout";
import { renderUnit } from "../../commands/unit";
import type { InstallSpec, ResolvedSource, ServiceSpec } from "../../model/service";
import type { ImageArtifact } from "../../providers/image/model";
import { dockerRunCommand } from "../../commands/image";
import { imageReleaseId } from "../../decisions/release-id";
import { resolveDepsHash, resolveRelease, type SourceArgs } from "../../source/resolve";
import type { SshConnection } from "../../transport/connection";
import { secret, type Props } from "./provider-host";

export interface ServiceCase {
  readonly name: string;
  readonly connection: SshConnection;
  readonly source: SourceArgs | { readonly image: ImageArtifact };
  /** Required except for image sources (default: docker run of the image). */
  readonly start?: string;
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
  const root = c.root ?? "/srv/fleet-test";
  const runAs = c.runAs ?? c.connection.user;
  if ("image" in c.source) {
    const a = c.source.image;
    const releaseId = imageReleaseId(a.imageId);
    const keys = [...Object.keys(c.env ?? {}), ...Object.keys(c.secretEnv ?? {}), "FLEET_RELEASE", "FLEET_COMMIT"];
    const start = c.start ?? dockerRunCommand({ container: c.name, image: a.imageId, envKeys: keys });
    return finish(c, { releaseId, commit: releaseId, source: { kind: "image", ...a }, start, root, runAs });
  }
  if (!c.start) throw new Error("a git or path source needs start");
  const release = resolveRelease(c.source, c.build, `services.${c.name}`);
  return finish(c, {
    releaseId: release.releaseId,
    commit: release.commit,
    source: release.source,
    start: c.start,
    root,
    runAs,
    install: c.install ? { ...c.install, hash: resolveDepsHash(release, c.install.when, c.install.run) } : undefined,
  });
}

interface Planned {
  readonly releaseId: string;
  readonly commit: string;
  readonly source: ResolvedSource;
  readonly start: string;
  readonly root: string;
  readonly runAs: string;
  readonly install?: InstallSpec;
}

function finish(c: ServiceCase, p: Planned): ServiceSpec {
  const { root, runAs } = p;
  return JSON.parse(
    JSON.stringify({
      name: c.name,
      connection: c.connection,
      host: c.connection.host,
      root,
      unitName: c.name,
      runAs,
      releaseId: p.releaseId,
      commit: p.commit,
      source: p.source,
      install: p.install,
      build: c.build,
      migrate: c.migrate,
      start: p.start,
      env: c.env ?? {},
      secretEnv: c.secretEnv ?? {},
      unit: renderUnit({ name: c.name, runAs, start: p.start, layout: serviceLayout(root, c.name, c.name) }),
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
