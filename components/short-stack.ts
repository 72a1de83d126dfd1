/**
 * Pulumi's SDK records, with every resource it registers, the whole JavaScript stack of the
 * `new` that made it (`stackTrace`: ~15 frames, ~0.5 KB per resource in state, written again
 * with the whole checkpoint at every step: docs/state.md). fleet's resources are made a few
 * frames below the program, so the frames past the caller say nothing a user needs.
 *
 * `shortStacks(frames)` cuts the stacks of errors made until `restore()` to that many frames:
 * the SDK reads `new Error().stack` while its constructor registers the resource. The source
 * position the SDK reports (the first frame past its own) is kept.
 */
export function shortStacks(frames: number): () => void {
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (error: Error, callSites: NodeJS.CallSite[]) =>
    [`${error.name}: ${error.message}`, ...callSites.slice(0, frames).map((site) => `    at ${site.toString()}`)].join(
      "\n",
    );
  return () => {
    Error.prepareStackTrace = previous;
  };
}
