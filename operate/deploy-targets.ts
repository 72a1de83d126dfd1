/**
 * `npm run deploy -- --hosts web1,web2` / `--services api` (issue 20): the `pulumi up --target`
 * values that deploy the chosen hosts' and services' resources, plus what they depend on, and
 * leave the rest of the stack alone. Pure: the stack's config, the stack and project names and
 * the selection in, the targets out.
 *
 * How Pulumi 3.248.0 treats `--target` (pkg/resource/deploy: target.go, step_generator.go,
 * deployment_executor.go):
 * - A target is a literal URN, or a glob when it has a `*`: `*` matches within a `::` segment
 *   (`[^:]*`), `**` anything (`.*`).
 * - Only what a target matches is updated; everything else gets a "same" step with its old
 *   state. Targeting a component does not reach its children (only `--target-dependents` does,
 *   and that follows dependents, the wrong way, to every service on a targeted host).
 * - A targeted resource whose parent or dependency does not exist yet, and is not targeted,
 *   fails the update ("untargeted create"): the first deploy of a service on a new host needs
 *   the Host, a new backup its DatabaseBackup. So the dependencies are targeted too.
 * - A literal that matches neither the state nor the program fails the update ("could not be
 *   found"); a glob that matches nothing is fine.
 *
 * Hence: each component by its literal URN, computed from the config with the names index.ts
 * gives them (every config entry is a component the program registers, so it is always found,
 * on a first deploy too), and its children by one glob per child suffix the component may have,
 * `<component type>$**::<name>-<suffix>` (components/tokens.ts CHILD_SUFFIXES): exact, since a
 * suffix has no `-` (no other component's child matches, unlike `<name>-*`, which would take
 * service `api-v2`'s children along with `api`'s), and fine for a child this host or service
 * does not have (an existing host has no `-server`). Reading the state instead (`pulumi stack
 * export`, walking parents) would miss what does not exist yet, which is exactly what a first
 * deploy of a host needs; and it costs a CLI run.
 */
import { backupsProtecting } from "../config/restore-on-rollback";
import type { FleetConfig } from "../config/schema";
import { CHILD_SUFFIXES, childName, TOKENS } from "../components/tokens";
import { fleetError } from "../model/errors";
import { serviceResourceName } from "../model/resource-names";
import { hostsOf, selectHosts, selectServices } from "./targets";

/** What `--hosts` and `--services` name (undefined: not given). */
export interface DeploySelection {
  readonly hosts?: readonly string[];
  readonly services?: readonly string[];
}

export type ComponentKind = keyof typeof TOKENS;

/** A component the deploy targets, with its children. */
export interface TargetedComponent {
  readonly kind: ComponentKind;
  /** Its Pulumi name (a service on several hosts: `<service>@<host>`). */
  readonly name: string;
  readonly urn: string;
  /** The globs that match its children. */
  readonly children: readonly string[];
  /** Named on the command line (false: a dependency of one that is). */
  readonly selected: boolean;
}

export interface DeployTargets {
  readonly components: readonly TargetedComponent[];
  /** The `--target` values, in order. */
  readonly targets: readonly string[];
}

/** In the order index.ts builds them. */
const KIND_ORDER: readonly ComponentKind[] = ["goldenImage", "host", "databaseBackup", "service"];

const LABEL: Record<ComponentKind, string> = {
  host: "Host",
  service: "Service",
  databaseBackup: "DatabaseBackup",
  goldenImage: "GoldenImage",
};

/** `Host web1`, `Service api@web1`: how the deploy names what it targets. */
export function componentLabel(c: { readonly kind: ComponentKind; readonly name: string }): string {
  return `${LABEL[c.kind]} ${c.name}`;
}

/**
 * The targets for `selection`, or undefined when it names nothing (the whole stack: a plain
 * `pulumi up`). Throws a config error (a usage error: nothing ran) naming the known hosts or
 * services for an unknown one, and for a `--services` entry that runs on none of `--hosts`.
 *
 * The resources: every service of `--services` (default: all) on every host of `--hosts`
 * (default: all) it runs on, the Hosts of `--hosts` (even with no service selected on them), and
 * what those depend on, transitively: a service's Host, the backups that protect it and its
 * docker image; a backup's Host; an image's hosts (a docker image ships to all of them at once);
 * an hcloud Host's golden image. Not a service's earlier rollout batches on other hosts: once
 * deployed, Pulumi uses their state, and before that it refuses, naming them.
 */
export function deployTargets(
  cfg: FleetConfig,
  stack: string,
  project: string,
  selection: DeploySelection,
): DeployTargets | undefined {
  const { hosts, services } = selection;
  if (hosts === undefined && services === undefined) return undefined;
  if (hosts?.length === 0)
    throw fleetError("config", "--hosts names no host", `Give one or more of ${list(Object.keys(cfg.hosts))}.`);
  if (services?.length === 0)
    throw fleetError(
      "config",
      "--services names no service",
      `Give one or more of ${list(Object.keys(cfg.services))}.`,
    );
  const onHosts = selectHosts(cfg, hosts);
  const chosen = selectServices(cfg, services);

  const picked = new Map<string, { kind: ComponentKind; name: string; selected: boolean }>();
  const queue: { kind: ComponentKind; name: string; selected: boolean }[] = [];
  const add = (kind: ComponentKind, name: string, selected: boolean) => {
    const key = `${kind}\0${name}`;
    const seen = picked.get(key);
    if (seen) {
      if (selected) picked.set(key, { ...seen, selected });
      return;
    }
    const entry = { kind, name, selected };
    picked.set(key, entry);
    queue.push(entry);
  };

  if (hosts) for (const h of onHosts) add("host", h, true);
  /** The service each service resource deploys, and where. */
  const placements = new Map<string, { service: string; host: string }>();
  for (const s of chosen) {
    const runsOn = hostsOf(cfg, s);
    const here = runsOn.filter((h) => onHosts.includes(h));
    if (services && hosts && here.length === 0)
      throw fleetError(
        "config",
        `service "${s}" runs on ${list(runsOn)}: none of --hosts ${hosts.join(",")}`,
        "Name a host it runs on, or leave it out of --services.",
      );
    for (const h of here) {
      const name = serviceResourceName(s, h, !cfg.services[s]!.host);
      placements.set(name, { service: s, host: h });
      add("service", name, true);
    }
  }

  // The dependencies, as index.ts wires them (test/mocks/deploy-targets.test.ts checks them
  // against the program's registrations).
  while (queue.length > 0) {
    const c = queue.shift()!;
    switch (c.kind) {
      case "service": {
        const { service, host } = placements.get(c.name)!;
        add("host", host, false);
        for (const b of backupsProtecting(cfg.backups, service)) add("databaseBackup", b, false);
        const image = cfg.services[service]!.source.image;
        if (image) add("goldenImage", image, false);
        break;
      }
      case "host": {
        const h = cfg.hosts[c.name]!;
        if (h.kind === "hcloud" && h.goldenImage) add("goldenImage", h.goldenImage, false);
        break;
      }
      case "databaseBackup":
        add("host", cfg.backups[c.name]!.host, false);
        break;
      case "goldenImage": {
        const img = cfg.images[c.name]!;
        if (img.kind === "docker") for (const h of img.hosts) add("host", h, false);
        break;
      }
      default: {
        const never: never = c.kind;
        throw new Error(`deploy targets: unknown component kind ${String(never)}`);
      }
    }
  }

  const stackName = stack.split("/").pop()!; // `org/project/stack` names the same stack: URNs hold its last part
  const order = configOrder(cfg);
  const components = [...picked.values()]
    .sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || order(a) - order(b))
    .map((c) => {
      const type = TOKENS[c.kind];
      return {
        ...c,
        urn: `urn:pulumi:${stackName}::${project}::${type}::${c.name}`,
        children: Object.values(CHILD_SUFFIXES[c.kind]).map(
          (suffix: string) => `urn:pulumi:${stackName}::${project}::${type}$**::${childName(c.name, suffix)}`,
        ),
      };
    });
  return { components, targets: components.flatMap((c) => [c.urn, ...c.children]) };
}

/** Where a component's entry is in the config, for a stable order. */
function configOrder(cfg: FleetConfig): (c: { kind: ComponentKind; name: string }) => number {
  const services = Object.keys(cfg.services).flatMap((s) =>
    hostsOf(cfg, s).map((h) => serviceResourceName(s, h, !cfg.services[s]!.host)),
  );
  const names: Record<ComponentKind, readonly string[]> = {
    host: Object.keys(cfg.hosts),
    service: services,
    databaseBackup: Object.keys(cfg.backups),
    goldenImage: Object.keys(cfg.images),
  };
  return (c) => names[c.kind].indexOf(c.name);
}

function list(names: readonly string[]): string {
  return names.length ? names.join(", ") : "none";
}
