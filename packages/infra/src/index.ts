export { startNats, type NatsOptions, type NatsServer } from './nats.js';
export { startPostgres, startThrowawayPostgres, type PostgresServer, type ThrowawayPostgres } from './postgres.js';
export { startRedis, type RedisServer } from './redis.js';
export { freePort, isPortOpen, waitFor, stopPid, readPid, isAlive, InfraError, spawnDaemon, assertPortFree } from './process.js';
export { startSshd, startSshdFleet, ensureTestUser, type SshServer, type SshFleet, type SshdOptions } from './sshd.js';
export { runNodeScript, writeNodeModule, type NodeScriptResult } from './modules.js';
