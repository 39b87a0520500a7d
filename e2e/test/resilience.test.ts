import { ADMIN, type Stack } from '@runnerhub/stack';
import { eventually, request, startTestStack } from './harness.js';

let stack: Stack & { dispose(): Promise<void> };

beforeAll(async () => {
  stack = await startTestStack();
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

const login = () => request(stack.gatewayUrl, 'POST', '/api/auth/login', { body: { username: ADMIN.username, password: ADMIN.password } });

test('a stopped service is reported unhealthy within 5 s while the gateway keeps answering', async () => {
  const inventory = stack.services.get('inventory')!;
  await inventory.stop();
  const stoppedAt = Date.now();
  const report = await eventually('inventory reported unhealthy', async () => {
    const { body } = await request(stack.gatewayUrl, 'GET', '/health');
    return body.services.inventory === 'unhealthy' ? body : undefined;
  }, 5_000);
  expect(Date.now() - stoppedAt).toBeLessThan(5_000);
  expect(report.status).toBe('degraded');
  expect(report.services.identity).toBe('healthy');
  expect((await login()).status).toBe(200);

  inventory.start();
  await eventually('inventory healthy again', async () => {
    const { body } = await request(stack.gatewayUrl, 'GET', '/health');
    return body.services.inventory === 'healthy' ? true : undefined;
  }, 15_000);
});

test('after NATS is killed and started again, services reconnect on their own and requests succeed', async () => {
  expect((await login()).status).toBe(200);
  await stack.nats.kill();
  const during = await login();
  expect(during.status).toBe(503);
  expect(during.body.error.code).toBe('SERVICE_UNAVAILABLE');

  await stack.nats.start();
  const after = await eventually('a login after NATS restarted', async () => {
    const response = await login();
    return response.status === 200 ? response : undefined;
  }, 20_000);
  expect(after.body.user.username).toBe(ADMIN.username);
  await eventually('every service healthy after the restart', async () => {
    const { body } = await request(stack.gatewayUrl, 'GET', '/health');
    return body.status === 'healthy' ? true : undefined;
  }, 20_000);
});

test('SIGTERM stops a service cleanly with exit code 0', async () => {
  const metrics = stack.services.get('metrics')!;
  const pid = metrics.pid!;
  const exited = new Promise<number | null>((resolve) => {
    const timer = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch {
        clearInterval(timer);
        resolve(0);
      }
    }, 50);
  });
  await metrics.stop(10_000);
  await expect(exited).resolves.toBe(0);
  expect(metrics.exitCode).toBe(0);
});
