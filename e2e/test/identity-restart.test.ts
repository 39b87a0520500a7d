import pg from 'pg';
import type { Stack } from '@runnerhub/stack';
import { request, startTestStack } from './harness.js';

let stack: Stack & { dispose(): Promise<void> };

beforeAll(async () => {
  stack = await startTestStack({ services: ['identity', 'gateway'] });
}, 120_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

test('identity restarted during a stream of registrations and logins: only retryable errors, no half-created account', async () => {
  const base = stack.gatewayUrl;
  const statuses = new Map<number, number>();
  const registered: string[] = [];
  let running = true;

  const client = async (worker: number) => {
    for (let i = 0; running; i++) {
      const email = `stream-${worker}-${i}@example.com`;
      const register = await request(base, 'POST', '/auth/register', { body: { email, full_name: `Stream ${worker} ${i}`, password: 'a-long-password' } });
      statuses.set(register.status, (statuses.get(register.status) ?? 0) + 1);
      if (register.status === 200) registered.push(email);
      const login = await request(base, 'POST', '/auth/login', { body: { email, password: 'a-long-password' } });
      statuses.set(login.status, (statuses.get(login.status) ?? 0) + 1);
    }
  };
  const clients = Promise.all([0, 1, 2, 3].map(client));

  await new Promise((r) => setTimeout(r, 1_000));
  const identity = stack.services.get('identity')!;
  await identity.stop();
  await new Promise((r) => setTimeout(r, 1_000));
  identity.start();
  await new Promise((r) => setTimeout(r, 4_000));
  running = false;
  await clients;

  // 200 ok; 401 a login whose registration was refused while identity was down; 503 while it was down.
  expect([...statuses.keys()].filter((status) => ![200, 401, 503].includes(status))).toEqual([]);
  expect(statuses.get(503)).toBeGreaterThan(0);
  expect(statuses.get(200)).toBeGreaterThan(0);

  // Every account exists whole (user, organisation, membership) or not at all.
  const db = new pg.Client({ connectionString: stack.postgres.url('identity') });
  await db.connect();
  try {
    const { rows } = await db.query(`
      SELECT u.email, count(m.user_id)::int AS memberships, count(o.id)::int AS organizations
      FROM users u LEFT JOIN memberships m ON m.user_id = u.id LEFT JOIN organizations o ON o.id = u.default_organization_id
      WHERE u.email LIKE 'stream-%' GROUP BY u.email`);
    expect(rows.every((row) => row.memberships === 1 && row.organizations === 1)).toBe(true);
    const orphans = await db.query(`SELECT count(*)::int AS n FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = o.id)`);
    expect(orphans.rows[0].n).toBe(0);
    expect(rows.map((row) => row.email).sort()).toEqual(expect.arrayContaining(registered));
  } finally {
    await db.end();
  }
}, 60_000);
