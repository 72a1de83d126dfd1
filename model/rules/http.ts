import { z } from "zod";

/**
 * A URL curl probes (health gates, image validation). Printable ASCII only: curl refuses
 * control characters and sends other bytes unencoded.
 */
export const probeUrl = z
  .string()
  .regex(/^https?:\/\/[\x21-\x7e]+$/, "must be an http(s) URL")
  .max(8192, "must be at most 8192 characters (HTTP servers refuse longer request lines)");

export const httpStatus = z.number().int().min(100).max(599);

/** A notification target's URL, posted to from the deploying machine. */
export const webhookUrl = z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) URL");
