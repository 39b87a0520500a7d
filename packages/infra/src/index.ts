export { startNats, type NatsServer } from './nats.js';
export { startPostgres, type PostgresServer } from './postgres.js';
export { startRedis, type RedisServer } from './redis.js';
export { freePort, isPortOpen, waitFor, stopPid, readPid, isAlive, InfraError, spawnDaemon, assertPortFree } from './process.js';
