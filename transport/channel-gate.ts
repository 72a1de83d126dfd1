/**
 * A FIFO gate with a limit on how many hold it at once: the SSH channels of one pooled connection
 * (transport/ssh.ts). Pure (no socket), so its rules are tested directly (test/unit/channel-gate.test.ts).
 *
 * A wait has an end: a deadline, or an abort. Unbounded, eight `logs -f` streams on one host held
 * every channel for as long as they followed, and each later command waited forever before its
 * own timeout had even started. A waiter that gives up leaves the queue, so it never takes a
 * channel it no longer wants (and never holds one that nobody frees).
 */
export interface ChannelGate {
  /**
   * A place before `deadline` (epoch ms) and before `signal` aborts: resolves with the function
   * that frees it (once), or with undefined when the deadline passed or the signal aborted first.
   * A free place is granted even after the deadline: the caller's own timer judges what is left.
   */
  acquire(deadline: number, signal?: AbortSignal): Promise<(() => void) | undefined>;
  /** Places held now. */
  readonly active: number;
  /** Callers waiting for a place, in the order they came. */
  readonly waiting: number;
}

export function channelGate(limit: number): ChannelGate {
  let active = 0;
  const queue: ((free: () => void) => void)[] = [];
  const place = (): (() => void) => {
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      // Handed straight to the longest waiter (still counted as held), so a caller arriving in
      // between cannot take it first: first come, first served.
      const next = queue.shift();
      if (next) next(place());
      else active--;
    };
  };
  return {
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
    acquire(deadline, signal) {
      if (signal?.aborted) return Promise.resolve(undefined);
      if (active < limit && queue.length === 0) {
        active++;
        return Promise.resolve(place());
      }
      return new Promise((resolve) => {
        const leave = () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", leave);
          const at = queue.indexOf(grant);
          if (at >= 0) queue.splice(at, 1);
          resolve(undefined);
        };
        const grant = (free: () => void) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", leave);
          resolve(free);
        };
        // No deadline (Infinity) waits for a place or the abort; setTimeout would read it as 1 ms.
        const timer = Number.isFinite(deadline) ? setTimeout(leave, Math.max(deadline - Date.now(), 0)) : undefined;
        signal?.addEventListener("abort", leave, { once: true });
        queue.push(grant);
      });
    },
  };
}
