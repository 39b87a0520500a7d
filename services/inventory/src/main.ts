import { runService } from '@runnerhub/service-kit';
import { inventoryEnv } from './config.js';

await runService({
  name: 'inventory',
  version: '0.1.0',
  description: 'Servers, nodes, groups, credentials, runner definitions and instances',
  env: inventoryEnv,
  start: async () => ({}),
});
