import { planService, type SettingsArgs } from "../../source/plan";
import type { ServiceSpec } from "../../model/service";
import type { SshConnection } from "../../transport/connection";
import { secret, type Props } from "./provider-host";

/** A service as the real-server tests deploy it: the Service component's arguments, in plain values. */
export interface ServiceCase extends SettingsArgs {
  readonly connection: SshConnection;
  readonly secretEnv?: Record<string, string>;
}

/**
 * The provider inputs the Service component registers for `c`, from the same plan
 * (source/plan.ts `planService`: release, pin, install hash, start, unit, health, defaults), but
 * for what the tests choose otherwise on purpose: their own root, a small free-disk floor for
 * the test containers, and a shorter step timeout.
 */
export function serviceSpec(c: ServiceCase): ServiceSpec {
  const { connection, secretEnv = {}, ...args } = c;
  const plan = planService(
    {
      ...args,
      root: c.root ?? "/srv/fleet-test",
      minFreeDiskMb: c.minFreeDiskMb ?? 64,
      stepTimeout: c.stepTimeout ?? "2m",
    },
    { connectionUser: connection.user, secretEnvKeys: Object.keys(secretEnv) },
  );
  // As JSON, like the inputs the provider receives (no undefined fields).
  return JSON.parse(JSON.stringify({ ...plan, connection, host: connection.host, secretEnv })) as ServiceSpec;
}

/** `serviceSpec` with `connection` and `secretEnv` marked secret, as the SDK sends them. */
export function serviceInputs(c: ServiceCase): Props {
  const spec = serviceSpec(c);
  return { ...spec, connection: secret(spec.connection), secretEnv: secret(spec.secretEnv) };
}
