/** `npm run pulumi -- <args>` (build/launch.js runs this file's bundle): engine/run.ts with the user's arguments. */
import { runPulumi } from "./run";

runPulumi(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`pulumi: ${err.message}`);
    process.exit(127);
  },
);
