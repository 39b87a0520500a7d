import { ConfigError, describeConfig, env, parseConfig } from './index.js';

const shape = {
  NATS_URL: env.string('NATS server URL', 'nats://127.0.0.1:14222'),
  METRICS_PORT: env.port('Port of the /metrics server', 9411),
  DEBUG_SQL: env.bool('Log SQL statements', false),
  LOG_LEVEL: env.enumOf(['debug', 'info', 'warn'] as const, 'Log level', 'info'),
};

test('applies defaults when variables are unset or empty', () => {
  const config = parseConfig(shape, { NATS_URL: '' });
  expect(config).toEqual({ NATS_URL: 'nats://127.0.0.1:14222', METRICS_PORT: 9411, DEBUG_SQL: false, LOG_LEVEL: 'info' });
});

test('coerces numbers and booleans from strings', () => {
  const config = parseConfig(shape, { METRICS_PORT: '9500', DEBUG_SQL: 'yes' });
  expect(config.METRICS_PORT).toBe(9500);
  expect(config.DEBUG_SQL).toBe(true);
});

test('a wrong value fails with a message naming the variable and the value', () => {
  expect(() => parseConfig(shape, { METRICS_PORT: 'abc' })).toThrow(ConfigError);
  expect(() => parseConfig(shape, { METRICS_PORT: '70000', LOG_LEVEL: 'loud' })).toThrow(/METRICS_PORT.*"70000".*LOG_LEVEL.*"loud"/);
});

test('describeConfig lists every variable with its default and description', () => {
  expect(describeConfig(shape)).toContainEqual({ name: 'METRICS_PORT', defaultValue: '9411', description: 'Port of the /metrics server' });
});
