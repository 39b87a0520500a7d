import { BusError, createClient, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';

/**
 * The public keys identity signs tokens with, fetched over the bus and cached.
 * An unknown key id triggers one refetch (at most once a second), which is
 * how a rotated key reaches the gateway.
 */
export class VerificationKeys {
  private keys = new Map<string, string>();
  private lastFetch = 0;
  private inflight?: Promise<void>;

  constructor(private readonly bus: Bus) {}

  async publicKey(kid: string | undefined): Promise<string> {
    if (!kid) throw new BusError('AUTH_INVALID', 'token has no key id');
    let key = this.keys.get(kid);
    if (!key && Date.now() - this.lastFetch > 1_000) {
      await this.fetch();
      key = this.keys.get(kid);
    }
    if (!key) throw new BusError('AUTH_INVALID', 'token was not signed by a known key');
    return key;
  }

  async fetch(): Promise<void> {
    this.inflight ??= (async () => {
      try {
        const reply = await createClient(this.bus, identityV1.Keys).getVerificationKeys({});
        this.keys = new Map(reply.keys.map((k) => [k.kid, k.publicKeyPem]));
        this.lastFetch = Date.now();
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }
}
