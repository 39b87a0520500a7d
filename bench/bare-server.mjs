/**
 * The baseline: a bare fastify server that answers GET /common/me with a
 * fixed JSON body held in memory. Forked by run.ts as plain JavaScript (no
 * TypeScript loader in this process), so that it shares no event loop with
 * the load generator and carries nothing the platform's services do not.
 *
 * Protocol over the IPC channel: the parent sends { body }, the child
 * listens on 127.0.0.1 on a free port and replies { port }.
 */
import Fastify from 'fastify';

if (!process.send) {
  console.error('bare-server.mjs is started by run.ts (child_process.fork)');
  process.exit(2);
}

// Exit with the parent: a benchmark must never leave a server behind.
process.on('disconnect', () => process.exit(0));

process.once('message', async (message) => {
  const body = message.body;
  const app = Fastify({ logger: false });
  app.get('/common/me', async () => body);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  process.send({ port: typeof address === 'object' && address ? address.port : 0 });
});
