/** Where deploy outcomes are announced. URLs carry tokens: targets are secrets end to end. */
export type NotifyKind = "webhook" | "slack" | "discord" | "telegram";
export type NotifyEventKind = "success" | "failure" | "rollback" | "critical";

export interface NotifyTarget {
  readonly kind: NotifyKind;
  /** The webhook URL (Slack/Discord incoming webhook, Telegram's sendMessage URL with the bot token). */
  readonly url: string;
  /** Telegram only: the chat to post to. */
  readonly chatId?: string;
  /** Which outcomes to announce. Default: all. */
  readonly events?: readonly NotifyEventKind[];
}

/** One deploy outcome, as every target kind is told it. */
export interface NotifyEvent {
  readonly event: NotifyEventKind;
  readonly service: string;
  readonly host: string;
  readonly from: string;
  readonly to: string;
  readonly commit: string;
  readonly durationMs: number;
  /** What happened, with the evidence (already redacted). */
  readonly message: string;
}
