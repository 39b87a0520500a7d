/**
 * The token-verification benchmark's server: a bare fastify app with the
 * gateway's own auth plugin (services/gateway/dist/plugins/*.js, as built),
 * connected to identity over the real NATS, and two routes that differ only
 * in authentication:
 *
 *   GET /open    the JSON below
 *   GET /closed  the same JSON, behind `onRequest: app.authenticate`
 *
 * Forked by run.ts as plain JavaScript (no TypeScript loader in this
 * process), so that it shares no event loop with the load generator.
 *
 * Protocol over the IPC channel: the parent sends
 *   { natsUrl, issuer, audience, disableTokenCache }
 * and the child replies { port, tokenCache } once it listens on 127.0.0.1,
 * or { error } when it cannot start. `tokenCache` is what fast-jwt's
 * verified-token cache was set to: the plugin's own value, or false when the
 * parent asked to disable it (done by adjusting the options the plugin passes
 * to @fastify/jwt, without changing the gateway's code).
 */
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { Bus } from '@runnerhub/bus';
import { authPlugin } from '../services/gateway/dist/plugins/auth.js';
import { VerificationKeys } from '../services/gateway/dist/plugins/keys.js';
import { RevokedSessions } from '../services/gateway/dist/plugins/revocations.js';

if (!process.send) {
  console.error('auth-server.mjs is started by run.ts (child_process.fork)');
  process.exit(2);
}

// Exit with the parent: a benchmark must never leave a server behind.
process.on('disconnect', () => process.exit(0));

const BODY = { ok: true, service: 'bench', message: 'same answer on both routes' };

/** Only warnings and errors, to stderr: the bus is quiet while it works. */
const quiet = {
  debug() {},
  info() {},
  warn(obj, msg) {
    console.error('[auth-server] warn:', msg ?? '', obj?.err?.message ?? '');
  },
  error(obj, msg) {
    console.error('[auth-server] error:', msg ?? '', obj?.err?.message ?? '');
  },
};

async function start({ natsUrl, issuer, audience, disableTokenCache }) {
  const bus = await Bus.connect({ servers: natsUrl, name: 'bench-auth-server', logger: quiet, registry: new Registry() });
  const revoked = new RevokedSessions(bus, 3_600_000);
  await revoked.start(60_000);
  const keys = new VerificationKeys(bus);

  const app = Fastify({ logger: false });
  let tokenCache;
  // authPlugin is wrapped by fastify-plugin, so it registers @fastify/jwt on
  // this very instance: the options it passes can be seen, and changed, here.
  const register = app.register;
  app.register = function (plugin, options) {
    if (options && typeof options.secret === 'function' && options.verify && 'cache' in options.verify) {
      if (disableTokenCache) options = { ...options, verify: { ...options.verify, cache: false } };
      tokenCache = options.verify.cache;
    }
    return register.call(this, plugin, options);
  };
  await app.register(authPlugin, { keys, revoked, issuer, audience });
  app.register = register;
  if (tokenCache === undefined) throw new Error('the auth plugin did not register @fastify/jwt with verify options as expected');

  app.get('/open', async () => BODY);
  app.get('/closed', { onRequest: app.authenticate }, async () => BODY);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();

  process.on('SIGTERM', () => {
    revoked.stop();
    void app.close().finally(() => bus.drain().finally(() => process.exit(0)));
    setTimeout(() => process.exit(0), 3_000).unref();
  });
  return { port: typeof address === 'object' && address ? address.port : 0, tokenCache };
}

process.once('message', (message) => {
  start(message).then(
    (ready) => process.send(ready),
    (error) => {
      process.send({ error: error?.stack ?? String(error) });
      setTimeout(() => process.exit(1), 100);
    },
  );
});
