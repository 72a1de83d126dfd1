import { z } from "zod";
import { unixUser } from "./names";
import { timeoutMs } from "./duration";
import type { SshConnection } from "../connection";

export const HOST_ADDRESS_PATTERN = /^[A-Za-z0-9.:_-]+$/;
export const hostAddress = z.string().regex(HOST_ADDRESS_PATTERN, "must be a host name or an IP address");
export const port = z.number().int().min(1).max(65535);
/** An hcloud server's firewall lets SSH in only from these sources. */
export const SSH_FROM_REQUIRED =
  "must name at least one CIDR allowed to reach SSH, or fleet could not reach the server";
export const cidr = z.string().regex(/^[0-9a-fA-F.:]+\/\d{1,3}$/, 'must be a CIDR such as "203.0.113.7/32"');

/** An SSH connection as the providers receive it (config/connections.ts builds it from a host entry). */
export const sshConnection: z.ZodType<SshConnection> = z.object({
  host: hostAddress,
  port: port.optional(),
  user: unixUser,
  privateKey: z.string().min(1),
  hostKey: z.string().min(1),
  connectTimeoutMs: timeoutMs.optional(),
  get jump() {
    return sshConnection.optional();
  },
});
