import { dockerImageSpecSchema, hcloudImageSpecSchema } from "../../model/image-spec";
import { checkInputs, type CheckFailure } from "../check-inputs";

export type { CheckFailure } from "../check-inputs";

/**
 * The image providers' own validation, with the model's rules (the config schema in index.ts
 * applies the same ones first; this protects direct users of GoldenImage). Runs in preview too,
 * so unknown values pass.
 */
export function checkDockerImageInputs(news: Record<string, unknown>): CheckFailure[] {
  return checkInputs(dockerImageSpecSchema, news);
}

export function checkHcloudImageInputs(news: Record<string, unknown>): CheckFailure[] {
  return checkInputs(hcloudImageSpecSchema, news);
}
