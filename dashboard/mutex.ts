/**
 * One dashboard action at a time (issue 21): a second is refused naming the one that runs, who
 * started it and since when. Pulumi's own stack lock still holds across processes; this keeps
 * two actions of one dashboard from queueing behind it.
 */

export interface Holder {
  readonly id: string;
  /** What runs: `deploy`, `rollback 2`, … */
  readonly action: string;
  /** Who started it (the client, as the server saw it). */
  readonly by: string;
  /** Epoch ms. */
  readonly since: number;
}

export type Acquired =
  { readonly ok: true; readonly release: () => void } | { readonly ok: false; readonly holder: Holder };

export class ActionMutex {
  private current: Holder | undefined;

  get holder(): Holder | undefined {
    return this.current;
  }

  /** Takes the slot for `holder`, or says who has it. `release` frees it once (later calls do nothing). */
  acquire(holder: Holder): Acquired {
    if (this.current) return { ok: false, holder: this.current };
    this.current = holder;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        if (this.current === holder) this.current = undefined;
      },
    };
  }
}

/** The refusal's words: `busy: deploy (started by 127.0.0.1 at 2026-12-03T16:00:00Z, 12s ago) is running`. */
export function busyMessage(holder: Holder, now: number): string {
  const ago = Math.max(0, Math.round((now - holder.since) / 1000));
  return (
    `busy: "${holder.action}" is running (started by ${holder.by} at ${new Date(holder.since).toISOString()}, ` +
    `${ago}s ago); wait for it to end, then try again. Nothing was started.`
  );
}
