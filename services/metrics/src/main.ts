import { runService } from '@runnerhub/service-kit';
import { metricsEnv } from './config.js';

await runService({
  name: 'metrics',
  version: '0.1.0',
  description: 'Aggregates events for dashboards, analytics and Prometheus',
  env: metricsEnv,
  start: async () => ({}),
});
