import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { Bus, ensureStreams } from '@runnerhub/bus';
import { executorV1, schedulerV1 } from '@runnerhub/contracts';
import { startNats, type NatsServer } from '@runnerhub/infra';
import { streamJob } from '../src/dialects/job-output.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let dir: string;
let nats: NatsServer;
let bus: Bus;
let app: FastifyInstance;
/** What the scheduler's record says, per job: it lags behind the events. */
const records = new Map<string, schedulerV1.Task>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rh-job-stream-'));
  nats = await startNats({ dataDir: dir });
  bus = await Bus.connect({ servers: nats.url, name: 'job-stream-test', logger: quiet, registry: new Registry() });
  await ensureStreams(bus);
  app = Fastify();
  app.get<{ Params: { id: string } }>('/jobs/:id/stream', (request, reply) => streamJob(request, reply, { bus, job: records.get(request.params.id)! }));
  await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await bus?.drain();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a client arriving after the job ended, before the scheduler recorded it, still gets its output and the complete event', async () => {
  const jobId = randomUUID();
  records.set(jobId, create(schedulerV1.TaskSchema, { uid: jobId, status: 'queued', attempt: 1 }));
  const js = bus.jetstream();
  const chunk = create(executorV1.OutputChunkSchema, { jobId, attempt: 1, seq: 0n, stream: executorV1.OutputStream.STDOUT, data: Buffer.from('done\n'), at: timestampNow(), run: 1 });
  await js.publish(`logs.${jobId}.stdout`, toBinary(executorV1.OutputChunkSchema, chunk));
  for (const status of [executorV1.JobStatus.RUNNING, executorV1.JobStatus.COMPLETED]) {
    const event = create(executorV1.JobStatusChangedSchema, { jobId, attempt: 1, status, exitCode: 0, outputChunks: 1n, run: 1, startedAt: timestampNow(), endedAt: timestampNow() });
    await js.publish(`events.job.${jobId}.status`, toBinary(executorV1.JobStatusChangedSchema, event));
  }

  const { port } = app.server.address() as { port: number };
  const response = await fetch(`http://127.0.0.1:${port}/jobs/${jobId}/stream`, { signal: AbortSignal.timeout(10_000) });
  const events = (await response.text()).split('\n\n').filter(Boolean).map((block) => {
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    return { event, data: data ? JSON.parse(data) : undefined };
  });
  expect(events.map((e) => e.event)).toEqual(['status', 'status', 'output', 'complete']);
  expect(events[0]!.data).toMatchObject({ status: 'queued' });
  expect(events[1]!.data).toMatchObject({ status: 'completed', exit_code: 0 });
  expect(events[2]!.data).toMatchObject({ type: 'stdout', content: 'done\n' });
  expect(events[3]!.data).toMatchObject({ status: 'completed', exit_code: 0 });
}, 30_000);
