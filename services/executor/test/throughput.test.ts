// Echo jobs per second through JOBS -> executor -> EVENTS/LOGS on 10 real sshd
// servers. A measurement, not a check: runs only with RH_BENCH=1.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { Bus, serveService } from '@runnerhub/bus';
import { executorV1 } from '@runnerhub/contracts';
import { deployMigrations } from '@runnerhub/db-migrate';
import { startNats, startThrowawayPostgres } from '@runnerhub/infra';
import { createMetricsRegistry } from '@runnerhub/observability';
import { SecretBox } from '@runnerhub/secrets';
import { createDatabase } from '../../inventory/src/adapters/database.js';
import { Credentials } from '../../inventory/src/domain/credentials.js';
import { Servers } from '../../inventory/src/domain/servers.js';
import { serversHandlers } from '../../inventory/src/handlers/servers.js';
import { InventoryCredentials, InventoryHostKeys } from '../src/adapters/inventory.js';
import { JobExecutor } from '../src/adapters/job-consumer.js';
import { SshPool } from '../src/adapters/ssh-pool.js';
import { HostBreakers } from '../src/domain/breaker.js';
import { CommandRunner } from '../src/domain/run-command.js';
import { startTestFleet, TEST_PASSWORD, TEST_USER } from './fleet.js';

const { JobDispatchSchema, JobStatus, JobStatusChangedSchema } = executorV1;
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const JOBS = Number(process.env.RH_BENCH_JOBS ?? 1_000);
const bench = process.env.RH_BENCH ? test : test.skip;

bench(`${JOBS} echo jobs through JOBS on 10 sshd servers`, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rh-exec-bench-'));
  const [nats, postgres, fleet] = await Promise.all([startNats({ dataDir }), startThrowawayPostgres(), startTestFleet(10, { firstAddress: 71, maxSessions: 10 })]);
  const connect = (name: string) => Bus.connect({ servers: nats.url, name, logger: silent, registry: createMetricsRegistry(`${name}-${randomUUID().slice(0, 8)}`) });
  try {
    const url = await postgres.freshDatabase('inventory');
    await deployMigrations({ schemaPath: join(new URL('.', import.meta.url).pathname, '../../inventory/prisma/schema.prisma'), databaseUrl: url });
    const { db, pool: pgPool } = createDatabase({ url, poolSize: 10, timeoutMs: 5_000 });
    const servers = new Servers(db, new Credentials(new SecretBox('t', { t: Buffer.alloc(32, 7).toString('base64') })));
    const org = randomUUID();
    const uids: string[] = [];
    for (const [index, server] of fleet.servers.entries()) {
      uids.push((await servers.create(org, { name: `b${index}`, hostname: server.host, port: server.port, username: TEST_USER, authType: 'password', password: TEST_PASSWORD, privateKey: '', description: '', tags: [], status: '', nodeType: '' })).id);
    }
    const inventoryBus = await connect('inventory');
    const inventory = await serveService(inventoryBus, { name: 'inventory', version: '0.0.0', description: 'bench' }, [serversHandlers(servers, { organizationOf: async () => '' })]);
    const executorBus = await connect('executor');
    const hostKeys = new InventoryHostKeys(executorBus);
    const pool = new SshPool({ verifyHostKey: hostKeys.verify });
    const breakers = new HostBreakers();
    const executor = new JobExecutor(executorBus, new CommandRunner(pool, breakers), new InventoryCredentials(executorBus, Number(process.env.RH_BENCH_CREDENTIAL_CACHE_MS ?? 10_000)), { executorId: 'bench', concurrency: 100, heartbeatMs: 5_000, ackWaitMs: 30_000, maxAckPending: 1_000 , shutdownGraceMs: 1_000 }, silent);
    await executor.start();
    const bus = await connect('bench');

    const run = async (count: number) => {
      let done = 0;
      let failed = 0;
      let finish: () => void = () => {};
      const all = new Promise<void>((resolve) => (finish = resolve));
      const sub = bus.nc.subscribe('events.job.*.status', {
        callback: (_, msg) => {
          const status = fromBinary(JobStatusChangedSchema, msg.data);
          if (status.status === JobStatus.RUNNING) return;
          if (status.status !== JobStatus.COMPLETED) failed++;
          if (++done === count) finish();
        },
      });
      const started = performance.now();
      const js = bus.jetstream();
      await Promise.all(
        Array.from({ length: count }, (_, index) => {
          const jobId = randomUUID();
          const uid = uids[index % uids.length]!;
          const dispatch = create(JobDispatchSchema, { jobId, organizationUid: org, attempt: 1, target: { serverId: uid, maxSessions: 10 }, work: { case: 'command', value: { command: `echo ${index}` } }, timeoutMs: 30_000, acceptedAt: timestampNow() });
          return js.publish(`jobs.ssh.${uid}`, toBinary(JobDispatchSchema, dispatch), { msgID: `${jobId}.1` });
        }),
      );
      await all;
      sub.unsubscribe();
      return { seconds: (performance.now() - started) / 1000, failed };
    };
    await run(50); // connections and host keys
    const { seconds, failed } = await run(JOBS);
    process.stdout.write(`\n${JOBS} echo jobs, 10 servers, concurrency 100: ${seconds.toFixed(2)} s, ${(JOBS / seconds).toFixed(0)} jobs/s, ${failed} failed\n`);
    expect(failed).toBe(0);

    await executor.stop();
    breakers.shutdown();
    await pool.close();
    await Promise.all([executorBus.drain(), bus.drain()]);
    await inventory.stop();
    await inventoryBus.drain();
    await db.$disconnect();
    await pgPool.end();
  } finally {
    await Promise.allSettled([nats.stop(), postgres.dispose(), fleet.stop()]);
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 300_000);
