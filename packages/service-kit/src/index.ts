export { identityAccess, type AccessCacheOptions, type OrganizationAccess, type Role } from './access.js';
export { commonEnv, type CommonEnv } from './env.js';
export { checkHealth, type DependencyCheck } from './health.js';
export { runService, startService, type RunningService, type ServiceDefinition, type ServiceRuntime, type StartedService } from './runtime.js';
export { GroupCommit } from './group-commit.js';
export { LookupCache } from './lookup-cache.js';
export { onServerChanged, serverChangedSubject } from './server-changes.js';
export { withTimeout } from './timeout.js';
