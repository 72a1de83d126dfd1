import { z } from "zod";
import { webhookUrl } from "./http";

/** A notification target's fields (model/notify.ts NotifyTarget). */
export const notifyTargetShape = {
  kind: z.enum(["webhook", "slack", "discord", "telegram"]),
  url: webhookUrl,
  chatId: z.string().min(1).optional(),
  events: z
    .array(z.enum(["success", "failure", "rollback", "critical"]))
    .min(1)
    .optional(),
};

/** Telegram's sendMessage needs the chat to post to. */
export function telegramChatProblem(t: { readonly kind: string; readonly chatId?: string }, ctx: z.RefinementCtx) {
  if (t.kind === "telegram" && !t.chatId)
    ctx.addIssue({ code: "custom", path: ["chatId"], message: "a telegram target needs chatId" });
}

export const notifyTarget = z.object(notifyTargetShape).superRefine(telegramChatProblem);
