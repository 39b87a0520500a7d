import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { identityV1 } from '@runnerhub/contracts';
import { startNats, type NatsServer } from '@runnerhub/infra';
import { Bus, BusError, implement, publishEvent, serveService } from '@runnerhub/bus';
import { identityAccess } from '@runnerhub/service-kit';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const alice = { userUid: 'u-alice', organizationUid: 'org-a', role: '', clientAddress: '', username: 'alice', sessionId: '' } as never;
let nats: NatsServer;
let natsDir: string;
let identity: Bus;
let client: Bus;
/** The role alice holds in org-a, as identity would answer. */
let aliceRole: 'viewer' | 'operator' = 'operator';
let asked = 0;

beforeAll(async () => {
  natsDir = mkdtempSync(join(tmpdir(), 'rh-access-'));
  nats = await startNats({ dataDir: natsDir });
  identity = await Bus.connect({ servers: nats.url, name: 'fake-identity', logger: quiet, registry: new Registry() });
  client = await Bus.connect({ servers: nats.url, name: 'client', logger: quiet, registry: new Registry() });
  await serveService(identity, { name: 'identity', version: '0.0.0', description: 'fake' }, [
    implement(identityV1.Organizations, {
      async authorize(request) {
        asked++;
        if (request.organizationRef && request.organizationRef !== 'org-a') throw BusError.notFound('organization');
        if (request.requiredRole === 'operator' && aliceRole !== 'operator') throw new BusError('PERMISSION_DENIED', 'operator role required');
        return { organization: { uid: 'org-a' } };
      },
    } as never),
  ]);
});

afterAll(async () => {
  await client.drain();
  await identity.drain();
  await nats.stop();
  rmSync(natsDir, { recursive: true, force: true });
});

beforeEach(() => {
  aliceRole = 'operator';
  asked = 0;
});

const changed = () => publishEvent(identity, 'events.identity.user.u-alice.changed', identityV1.UserChangedSchema, { userUid: 'u-alice' });
const eventually = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('never happened');
};

describe('identityAccess with a cache', () => {
  it('asks identity once for repeated grants and again after the TTL', async () => {
    const access = identityAccess(client, { cacheMs: 300 });
    for (let i = 0; i < 5; i++) await expect(access.organizationOf(alice, '', 'operator')).resolves.toBe('org-a');
    expect(asked).toBe(1);
    await new Promise((r) => setTimeout(r, 350));
    await access.organizationOf(alice, '', 'operator');
    expect(asked).toBe(2);
  });

  it('never remembers a refusal', async () => {
    const access = identityAccess(client, { cacheMs: 60_000 });
    await expect(access.organizationOf(alice, 'org-b', 'viewer')).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    await expect(access.organizationOf(alice, 'org-b', 'viewer')).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    expect(asked).toBe(2);
  });

  it("drops a user's grants when identity says the user changed: a lowered role is refused at once", async () => {
    const access = identityAccess(client, { cacheMs: 60_000 });
    await access.organizationOf(alice, '', 'operator');
    aliceRole = 'viewer';
    changed();
    await eventually(async () => {
      const refused = await access.organizationOf(alice, '', 'operator').then(() => false, (error: BusError) => error.code === 'PERMISSION_DENIED');
      return refused;
    });
  });

  it('asks every time without a cache', async () => {
    const access = identityAccess(client);
    await access.organizationOf(alice, '', 'viewer');
    await access.organizationOf(alice, '', 'viewer');
    expect(asked).toBe(2);
  });
});
