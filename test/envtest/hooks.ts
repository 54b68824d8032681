// Mocha root-hook plugin: load with `"require": ["test/envtest/hooks.ts"]` in .mocharc.json.
// Stops the shared control plane after the whole run, whatever the tests did.
import type { Context, RootHookObject } from 'mocha';
import { stopSharedControlPlane } from './shared.js';

export const mochaHooks: RootHookObject = {
  async afterAll(this: Context) {
    this.timeout(60_000);
    await stopSharedControlPlane();
  },
};
