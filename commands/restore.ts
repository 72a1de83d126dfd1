import type { ServiceLayout } from "./layout";
import type { ServiceSpec } from "../model/service";
import { restoreInPlaceLines } from "./service-shell";
import { proxyRestoreLines } from "./service-proxy";

/**
 * Puts back what an activation saved in `.rollback/`, in the service's mode: restarted in place,
 * or behind the proxy (switch back, stop the new instance). The deploying side's rollback, the
 * host's watchdog and a takeover of a dead deploy's lock all run these lines.
 */
export function restoreLines(
  spec: ServiceSpec,
  layout: ServiceLayout,
  options: { unstage?: boolean; probe: boolean },
): string[] {
  return spec.proxy ? proxyRestoreLines(spec, layout, options) : restoreInPlaceLines(spec, layout, options);
}
