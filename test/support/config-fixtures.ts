import { strict as assert } from "assert";
import { isConfigInvalid, parseFleetConfig, type ConfigInvalid } from "../../config/schema";

/** Raw config pieces and verdicts shared by the config schema tests. */

/** The one host the fixtures' services run on, under the name `web1`. */
export const web1Host = () => ({ address: "127.0.0.11", privateKeyFile: "/k", hostKey: "ssh-ed25519 AAAA" });

/** A minimal service on `web1`: its required fields only. */
export const webService = () => ({
  host: "web1",
  source: { path: "./app" },
  start: "python3 app.py",
  health: { url: "http://127.0.0.1:8080/health" },
});

/** The config error parsing `raw` throws (undefined when it is accepted); other errors propagate. */
function configError(raw: unknown): ConfigInvalid | undefined {
  try {
    parseFleetConfig(raw);
    return undefined;
  } catch (err) {
    if (!isConfigInvalid(err)) throw err;
    return err;
  }
}

/** The config's problems (none when it is accepted). */
export const configProblems = (raw: unknown): string[] => [...(configError(raw)?.problems ?? [])];

/** The problems of a config that must be refused: fails the test when it is accepted. */
export function refusedConfigProblems(raw: unknown): string[] {
  const err = configError(raw);
  if (!err) assert.fail("expected the config to be refused");
  return [...err.problems];
}
