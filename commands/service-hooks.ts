/**
 * Hooks on a service (issue 20): `preSwitch`, `postDeploy`, `postRollback`, run on the host as the
 * service's user, in a release directory, with the service's environment plus FLEET_SERVICE,
 * FLEET_HOST, FLEET_RELEASE (the release whose directory it runs in), FLEET_PREVIOUS_RELEASE (the
 * one that served before) and FLEET_COMMIT (FLEET_RELEASE's commit), while the deploy holds the
 * lock. A hook's stdout goes to stderr: stdout carries the scripts' facts.
 */
import type { ServiceSpec } from "../model/service";
import { serviceLayout } from "./layout";
import { proxyLayout } from "./proxy";
import { emitBytes, shq } from "./quote";
import { ENV_FILE_NOT_LINK, EXIT, RECORD_SCRIPT, SERVICE_ENV_RUN, header, lockIs } from "./service-shell";
import { decideLines } from "./watchdog";

export type HookName = "pre-switch" | "post-deploy" | "post-rollback";

/**
 * `run_hook <env file> <user> <me> <command> <service> <host> <release> <previous> <commit>`:
 * the hook as the service's user, with its env file and the FLEET_* variables; root's shell never
 * sources the env file (service_env_run).
 */
const RUN_HOOK = [
  SERVICE_ENV_RUN,
  `run_hook() {`,
  `  ${ENV_FILE_NOT_LINK}`,
  `  service_env_run "$2" "$4" "FLEET_SERVICE=$5" "FLEET_HOST=$6" "FLEET_RELEASE=$7" "FLEET_PREVIOUS_RELEASE=$8" "FLEET_COMMIT=$9" 3<"$1" 1>&2`,
  `}`,
].join("\n");

/** FLEET_HOST: the host's name in the stack's config, else its address. */
export function hookHostName(spec: Pick<ServiceSpec, "hostName" | "host">): string {
  return spec.hostName ?? spec.host;
}

/**
 * preSwitch, inside the activation (after stage, build and migrate; before the switch): with the
 * new release's env file (it is not in place yet), in `$R`. A failure exits with the hook's code
 * in phase `pre-switch`, before anything switched.
 */
export function preSwitchLines(spec: ServiceSpec, envFile: string): string[] {
  const run = spec.hooks?.preSwitch;
  if (run === undefined) return [];
  const env = `"$D/.lock/hook-env"`;
  return [
    "phase pre-switch",
    RUN_HOOK,
    `(umask 077 && ${emitBytes(envFile)} > ${env})`,
    `cur=$(readlink "$D/current" 2>/dev/null || true)`,
    `me=$(id -un)`,
    `(cd "$R" && run_hook ${env} "$RUN_AS" "$me" ${shq(run)} ${shq(spec.name)} ${shq(hookHostName(spec))} ${shq(spec.releaseId)} "\${cur##*/}" ${shq(spec.commit)}) || { rc=$?; rm -f ${env}; echo "the preSwitch hook failed (exit $rc): nothing was switched" >&2; exit $rc; }`,
    `rm -f ${env}`,
  ];
}

/** The env file the serving release runs with: `shared/env`, or behind the proxy its instance's. */
function servingEnvLine(spec: ServiceSpec): string {
  const layout = serviceLayout(spec.root, spec.name, spec.unitName);
  if (!spec.proxy) return `ef=${shq(layout.envFile)}`;
  const serving = proxyLayout(layout.dir).servingFile;
  return `ef="$D/shared/instances/$(cat ${shq(serving)} 2>/dev/null).env"`;
}

export interface HookRun {
  readonly hook: Exclude<HookName, "pre-switch">;
  readonly run: string;
  /** The release that served before (FLEET_PREVIOUS_RELEASE; "" for none). */
  readonly previous: string;
  /** This deploy's lock token: the hook runs only while the lock is still this deploy's (else EXIT.lockLost). */
  readonly token: string;
  /**
   * Decide the activation first (the host's watchdog stands down), so that a slow hook is not
   * taken for a deploying side that is gone; the deploy's rollback still undoes the switch.
   */
  readonly decide: boolean;
}

/**
 * postDeploy or postRollback, as a script of its own: in the serving release (`current`), with
 * the env file it runs with. Exits with the hook's code; EXIT.lockLost when the lock is gone.
 */
export function hookScript(spec: ServiceSpec, h: HookRun): string {
  const layout = serviceLayout(spec.root, spec.name, spec.unitName);
  return (
    header(layout, spec.runAs) +
    [
      `if ! ${lockIs(h.token)}; then echo lock_lost=1; exit ${EXIT.lockLost}; fi`,
      // A hook that outlives its timeout is stopped by the finalize that follows (its reap).
      RECORD_SCRIPT,
      ...(h.decide ? decideLines(spec, layout, spec.health.timeoutMs + 60_000, EXIT.reverted) : []),
      `phase ${h.hook}`,
      RUN_HOOK,
      `cur=$(readlink "$D/current" 2>/dev/null || true)`,
      `[ -n "$cur" ] && [ -d "$D/$cur" ] || { echo "no serving release to run the hook in" >&2; exit 1; }`,
      servingEnvLine(spec),
      `[ -f "$ef" ] || ef=/dev/null`,
      `me=$(id -un); rel=\${cur##*/}; commit=$(mark_get "$rel" commit); commit=\${commit:-$rel}`,
      `cd "$D/$cur"`,
      `run_hook "$ef" "$RUN_AS" "$me" ${shq(h.run)} ${shq(spec.name)} ${shq(hookHostName(spec))} "$rel" ${shq(h.previous)} "$commit"`,
      "",
    ].join("\n")
  );
}
