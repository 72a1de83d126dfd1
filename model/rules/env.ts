import { z } from "zod";
import { NONCHARACTER, TOO_LONG, fitsExec, hasNoncharacter } from "./text";

export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_KEY = "environment variable names are letters, digits and '_', not starting with a digit";
export const envKey = z.string().regex(ENV_KEY_PATTERN, ENV_KEY);

/**
 * A process's whole environment, `KEY=value` entries together: half of Linux's default limit for
 * arguments and environment (ARG_MAX, 2 MiB), the rest left for what systemd and sh add.
 */
export const MAX_ENV_BYTES = 1_048_576;
export const envBytes = (env: Record<string, unknown>) =>
  Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(String(v)) + 2, 0);
export const envTooBig = (n: number) =>
  `the environment totals ${n} bytes; a process gets at most ${MAX_ENV_BYTES} (Linux's limit for arguments and environment is 2 MiB)`;

/**
 * A service's environment (env, and secretEnv: both land in its EnvironmentFile). Key errors
 * are reported at the key's own path; FLEET_* are fleet's own (FLEET_RELEASE, FLEET_COMMIT).
 */
export const serviceEnv = z.record(z.string(), z.string()).superRefine((env, ctx) => {
  for (const key of Object.keys(env)) {
    if (!fitsExec(`${key}=${env[key]}`)) ctx.addIssue({ code: "custom", path: [key], message: TOO_LONG });
    if (hasNoncharacter(env[key]!)) ctx.addIssue({ code: "custom", path: [key], message: NONCHARACTER });
    if (!ENV_KEY_PATTERN.test(key)) ctx.addIssue({ code: "custom", path: [key], message: ENV_KEY });
    else if (key.startsWith("FLEET_"))
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: "FLEET_* variables are set by fleet (FLEET_RELEASE, FLEET_COMMIT)",
      });
  }
});

/** Why env and secretEnv together are too big for the service's exec, or undefined. */
export function serviceEnvTotalProblem(env: Record<string, unknown>, secretEnv: Record<string, unknown>) {
  const total = envBytes(env) + envBytes(secretEnv);
  return total > MAX_ENV_BYTES ? envTooBig(total) : undefined;
}

/** An environment for a process (images' build args and scripts): each `KEY=value` within the exec limit. */
export const execEnv = (value: z.ZodString) =>
  z.record(envKey, value).superRefine((env, ctx) => {
    for (const [k, v] of Object.entries(env))
      if (!fitsExec(`${k}=${v}`)) ctx.addIssue({ code: "custom", path: [k], message: TOO_LONG });
    if (envBytes(env) > MAX_ENV_BYTES) ctx.addIssue({ code: "custom", message: envTooBig(envBytes(env)) });
  });
