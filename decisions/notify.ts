import type { NotifyEvent, NotifyTarget } from "../model/notify";

const TITLES: Record<NotifyEvent["event"], string> = {
  success: "✅ deployed",
  failure: "❌ deploy failed (nothing switched)",
  rollback: "⚠️ deploy failed, rolled back",
  critical: "🚨 CRITICAL: rollback failed",
};

/** A human summary: one line of facts, then the message, cut to `limit` characters. */
export function summary(e: NotifyEvent, limit: number): string {
  const head = `${TITLES[e.event]}: ${e.service} on ${e.host}, ${e.from || "-"} → ${e.to} (${(e.durationMs / 1000).toFixed(1)} s)`;
  const text = e.message ? `${head}\n${e.message}` : head;
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/** The HTTP request body each kind of target expects; undefined when the target skips this event. */
export function notificationBody(target: NotifyTarget, e: NotifyEvent): object | undefined {
  if (target.events && !target.events.includes(e.event)) return undefined;
  switch (target.kind) {
    case "webhook":
      return { ...e, text: summary(e, 4000) };
    case "slack":
      return { text: summary(e, 3500) };
    case "discord":
      return { content: summary(e, 2000) };
    case "telegram":
      return { chat_id: target.chatId ?? "", text: summary(e, 4000), disable_web_page_preview: true };
    default: {
      const never: never = target.kind;
      throw new Error(`unknown notification kind ${String(never)}`);
    }
  }
}
