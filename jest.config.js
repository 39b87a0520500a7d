// One Jest run for the whole workspace. Workspace packages resolve to their
// TypeScript sources, so a test never runs against a stale dist/.
const workspacePackages = ['bus', 'config', 'contracts', 'database', 'db-migrate', 'fake-github', 'infra', 'observability', 'secrets', 'service-kit', 'stack'];

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    [`^@runnerhub/(${workspacePackages.join('|')})$`]: '<rootDir>/packages/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  testMatch: ['<rootDir>/{packages,services,e2e}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 60_000,
  maxWorkers: 2,
};
