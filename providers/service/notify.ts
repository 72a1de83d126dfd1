import type { NotifyEvent, NotifyTarget } from "../../model/notify";
import { notificationBody } from "../../decisions/notify";
import { redact } from "../../transport/redact";

/** How long one notification may take; a deploy never waits longer for its announcement. */
const NOTIFY_TIMEOUT_MS = 5000;

/**
 * Announces a deploy outcome to every target. A target that cannot be reached is a warning on
 * the console (URL redacted), never a failed deploy.
 */
export async function notifyAll(
  targets: readonly NotifyTarget[],
  e: NotifyEvent,
  secrets: readonly string[],
): Promise<string[]> {
  const warnings: string[] = [];
  await Promise.all(
    targets.map(async (target) => {
      const body = notificationBody(target, e);
      if (!body) return;
      try {
        const res = await fetch(target.url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
      } catch (err) {
        const warning = redact(
          `warning: ${target.kind} notification for ${e.service} failed: ${(err as Error).message}`,
          [...secrets, target.url],
        );
        console.error(warning);
        warnings.push(warning);
      }
    }),
  );
  return warnings;
}
