import { outcomeMarker } from "../../decisions/outcome";

/** An image that was not activated; the message carries the evidence. A plain Error (see transport/errors.ts). */
export function imageError(message: string): Error {
  return Object.assign(new Error(`${message}\n${outcomeMarker("build")}`), { name: "ImageError" });
}

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
    const note = `${what} failed: ${(e as Error).message}`;
    failure = failure ? imageError(`${failure.message}\nAlso, ${note}`) : imageError(note);
  }
  if (failure) throw failure;
  return result as T;
}
