import { runService } from '@runnerhub/service-kit';
import { identityEnv } from './config.js';

await runService({
  name: 'identity',
  version: '0.1.0',
  description: 'Accounts, organisations, roles and tokens',
  env: identityEnv,
  // Imported after telemetry starts so that pg is instrumented.
  start: async (runtime) => (await import('./app.js')).startIdentity(runtime),
});
