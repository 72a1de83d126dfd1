/**
 * How an operator script ends (npm run status, logs, exec, reboot, dashboard): its exit code; a
 * config error is a usage error (its message as it is, exit 6), anything else names the script
 * (exit `failedExit`); the pooled SSH connections are closed either way.
 */
import { USAGE_EXIT } from "../config/cli-args";
import { isFleetError } from "../model/errors";
import { closeAll } from "../transport/ssh";

export function runOperatorScript(name: string, main: () => Promise<number>, failedExit = 1): void {
  main()
    .then(
      (code) => (process.exitCode = code),
      (err) => {
        const config = isFleetError(err) && err.kind === "config";
        console.error(config ? (err as Error).message : `${name}: ${(err as Error).message}`);
        process.exitCode = config ? USAGE_EXIT : failedExit;
      },
    )
    .finally(() => closeAll());
}
