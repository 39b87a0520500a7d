import { runService } from '@runnerhub/service-kit';
import { inventoryEnv } from './config.js';

await runService({
  name: 'inventory',
  version: '0.1.0',
  description: 'Servers, nodes, groups, credentials, runner definitions and instances',
  env: inventoryEnv,
  // Imported after telemetry starts so that pg is instrumented.
  start: async (runtime) => (await import('./app.js')).startInventory(runtime),
});
