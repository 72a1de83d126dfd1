import { fleetError, isFleetError, summaryOf } from "../../model/errors";

/**
 * Runs `work`, then `cleanup` whatever happened. A failed cleanup is reported without hiding the
 * work's own failure: both messages reach the user.
 */
export async function withCleanup<T>(work: () => Promise<T>, cleanup: () => Promise<void>, what: string): Promise<T> {
  let failure: Error | undefined;
  let result: T | undefined;
  try {
    result = await work();
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
  }
  try {
    await cleanup();
  } catch (e) {
    const note = `${what} failed: ${summaryOf(e)}`;
    const hint = `Remove what ${what} left behind by hand if it is still there; nothing else depends on it.`;
    failure = failure
      ? fleetError(
          isFleetError(failure) ? failure.kind : "build",
          `${summaryOf(failure)}\nAlso, ${note}`,
          isFleetError(failure) ? failure.hint : hint,
        )
      : fleetError("build", note, hint);
  }
  if (failure) throw failure;
  return result as T;
}
