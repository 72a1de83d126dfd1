import { backupSpecSchema } from "../../model/backup-spec";
import { checkInputs, type CheckFailure } from "../check-inputs";

export type { CheckFailure } from "../check-inputs";

/**
 * The backup provider's own validation of its inputs, with the model's rules (the config schema
 * and the restore CLI are the first line). Runs in preview too, so unknown values pass.
 */
export function checkBackupInputs(news: Record<string, unknown>): CheckFailure[] {
  return checkInputs(backupSpecSchema, news);
}
