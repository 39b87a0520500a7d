import { fromBinary } from '@bufbuild/protobuf';
import { BusError, createClient, type Bus, type ServiceClient } from '@runnerhub/bus';
import { inventoryV1, type executorV1 } from '@runnerhub/contracts';
import { openSealed, x25519KeyPair, type X25519KeyPair } from '@runnerhub/secrets';
import { LookupCache, onServerChanged } from '@runnerhub/service-kit';

type JobDispatch = executorV1.JobDispatch;
import type { HostKeyVerifier } from '../domain/host-keys.js';
import { SshError } from '../domain/ssh-errors.js';
import type { SshTarget } from '../domain/target.js';

type ServersClient = ServiceClient<(typeof inventoryV1.Servers)['method']>;

/**
 * Asks inventory for the login of a dispatch's server
 * (inventory.v1.servers.resolve_credentials). Every request carries a fresh
 * X25519 key; the secret comes back sealed to it and is opened here only, so
 * it is never in clear on the bus. It stays in memory for this job (the pool
 * keeps a keyed digest of it, not the secret).
 */
export class InventoryCredentials {
  private readonly servers: ServersClient;
  /** Recently resolved logins per organisation, server and credential: one request per server every cacheMs, not one per job. */
  private readonly cache?: LookupCache<SshTarget>;

  constructor(
    bus: Bus,
    cacheMs = 0,
    private readonly timeoutMs?: number,
  ) {
    this.servers = createClient(bus, inventoryV1.Servers);
    if (cacheMs > 0) {
      const cache = (this.cache = new LookupCache({ ttlMs: cacheMs }));
      // A changed server (a new password or key among others) is asked for again at once.
      onServerChanged(bus, (serverUid) => cache.dropGroup(serverUid));
    }
  }

  async targetFor(dispatch: JobDispatch): Promise<SshTarget> {
    if (!this.cache) return this.resolve(dispatch);
    const key = [dispatch.organizationUid, dispatch.target?.serverId, dispatch.target?.credentialId, dispatch.target?.credentialVersion, dispatch.target?.hostKeyFingerprint, dispatch.target?.maxSessions].join('\0');
    return this.cache.get(key, (dispatch.target?.serverId ?? '').toLowerCase(), () => this.resolve(dispatch));
  }

  private async resolve(dispatch: JobDispatch): Promise<SshTarget> {
    const serverUid = dispatch.target?.serverId ?? '';
    const replyKey = x25519KeyPair();
    const reply = await this.servers.resolveCredentials(
      {
        jobId: dispatch.jobId,
        organizationUid: dispatch.organizationUid,
        serverUid,
        credentialId: dispatch.target?.credentialId ?? '',
        credentialVersion: dispatch.target?.credentialVersion ?? 0,
        replyPublicKey: replyKey.publicKey,
      },
      this.timeoutMs === undefined ? undefined : { timeoutMs: this.timeoutMs },
    );
    if (!reply.secret) throw new BusError('INTERNAL_ERROR', 'inventory answered without a sealed secret');
    const secret = openCredentials(replyKey, reply.secret, inventoryV1.credentialsAad(dispatch.jobId, serverUid));
    return {
      host: reply.host,
      port: reply.port || 22,
      username: reply.username,
      credentials: reply.authType === 'key' ? { privateKey: secret.privateKey } : { password: secret.password },
      ...(dispatch.target?.maxSessions ? { maxSessions: dispatch.target.maxSessions } : {}),
      hostKey: { organizationUid: dispatch.organizationUid, serverUid, expected: dispatch.target?.hostKeyFingerprint || reply.hostKeyFingerprint },
    };
  }
}

/**
 * Host keys kept in inventory's server records, so they survive executor
 * restarts: a key already recorded (or named by the dispatch) is compared
 * here; a server without one has the offered key recorded through
 * inventory.v1.servers.record_host_key, which refuses a different key than
 * one recorded meanwhile. Targets that do not come from inventory fall back
 * to `fallback` (the in-memory store in tests).
 */
export class InventoryHostKeys {
  private readonly servers: ServersClient;
  /** The key each server offered last: reported in job statuses. */
  private readonly seen = new Map<string, string>();

  constructor(
    bus: Bus,
    private readonly fallback?: HostKeyVerifier,
  ) {
    this.servers = createClient(bus, inventoryV1.Servers);
  }

  lastSeen(server: string): string {
    return this.seen.get(server) ?? '';
  }

  readonly verify: HostKeyVerifier = async (server, fingerprint, target) => {
    this.seen.set(server, fingerprint);
    const scope = target?.hostKey;
    if (!scope) {
      if (this.fallback) return this.fallback(server, fingerprint, target);
      throw new SshError('HOST_KEY_UNVERIFIED', `no inventory record to check the host key of ${server} against`);
    }
    if (scope.expected) {
      if (scope.expected === fingerprint) return;
      throw new SshError(
        'HOST_KEY_CHANGED',
        `the host key of ${server} changed: ${scope.expected} is recorded, the server offered ${fingerprint}; accept the new key if the change is expected`,
      );
    }
    try {
      await this.servers.recordHostKey({ organizationUid: scope.organizationUid, serverUid: scope.serverUid, fingerprint });
    } catch (error) {
      if (error instanceof BusError && error.code === 'RESOURCE_CONFLICT') throw new SshError('HOST_KEY_CHANGED', error.message.replace('of the server', `of ${server}`));
      throw new SshError('HOST_KEY_UNVERIFIED', `inventory could not record the host key of ${server}: ${(error as Error).message}`);
    }
  };
}

function openCredentials(replyKey: X25519KeyPair, sealed: inventoryV1.SealedSecret, aad: string): inventoryV1.SealedSecretPlaintext {
  try {
    return fromBinary(inventoryV1.SealedSecretPlaintextSchema, openSealed(replyKey, sealed, aad, inventoryV1.CREDENTIALS_SEALING_INFO));
  } catch (error) {
    throw new BusError('INTERNAL_ERROR', `the sealed credential could not be opened: ${(error as Error).message}`);
  }
}
