import { serviceSpecSchema } from "../../model/service-spec";
import { checkInputs, type CheckFailure } from "../check-inputs";

export type { CheckFailure } from "../check-inputs";

/**
 * The provider's own validation, with the model's rules (the config schema in index.ts applies
 * the same ones first; this protects direct users of the component). Runs in preview too, so
 * unknown values pass.
 */
export function checkServiceInputs(news: Record<string, unknown>, olds: Record<string, unknown> = {}): CheckFailure[] {
  return [...checkInputs(serviceSpecSchema, news), ...modeMoveFailures(olds, news)];
}

/**
 * A service deployed behind the proxy cannot move back to restart mode by an update: its
 * instances and route would stay behind. (The move onto the proxy is an update: the plain unit
 * serves until the switch, then retires.)
 */
function modeMoveFailures(olds: Record<string, unknown>, news: Record<string, unknown>): CheckFailure[] {
  const was = olds["proxy"] !== undefined && olds["proxy"] !== null && olds["releaseId"] !== undefined;
  if (!was || news["proxy"] !== undefined) return [];
  return [
    {
      property: "proxy",
      reason:
        "this service runs behind the proxy; moving it back to restart mode is not supported by an update: keep proxy, or remove the service (pulumi destroy --target its URN) and deploy it again without proxy",
    },
  ];
}
