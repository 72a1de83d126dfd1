import { serviceSpecSchema } from "../../model/service-spec";
import { checkInputs, type CheckFailure } from "../check-inputs";

export type { CheckFailure } from "../check-inputs";

/**
 * The provider's own validation, with the model's rules (the config schema in index.ts applies
 * the same ones first; this protects direct users of the component). Runs in preview too, so
 * unknown values pass.
 */
export function checkServiceInputs(news: Record<string, unknown>): CheckFailure[] {
  return checkInputs(serviceSpecSchema, news);
}
