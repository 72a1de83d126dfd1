import { ProviderHost, type ProviderHostOptions } from "./provider-host";

/**
 * One provider host for the calling mocha suite: started in its `before` hook, stopped in its
 * `after` hook. Returns the way to reach it, valid inside the suite's tests (after `before`).
 */
export function providerHostForSuite(options?: ProviderHostOptions): () => ProviderHost {
  let host: ProviderHost | undefined;
  before(async () => {
    host = await ProviderHost.start(options);
  });
  after(async () => {
    await host?.stop();
  });
  return () => {
    if (!host) throw new Error("the suite's provider host is not started: use it inside a test");
    return host;
  };
}
