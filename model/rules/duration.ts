import { z } from "zod";
import { DURATION_PATTERN } from "../duration";

export const duration = z.string().regex(DURATION_PATTERN, 'must be a duration like "500ms", "30s" or "2m"');

/** A limit on a step or a connection: zero would fail every step before it starts. */
export const timeout = duration.refine((v) => {
  const match = DURATION_PATTERN.exec(v.trim());
  return !match || Number(match[1]) > 0;
}, "must be longer than 0");

/** A timeout in milliseconds, as the providers take it. */
export const timeoutMs = z.number().int().min(1);
