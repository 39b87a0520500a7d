import { SshError } from './ssh-errors.js';
import type { SshTarget } from './target.js';

/** Called once per new connection with the key the server offered (and the target connected to); throws to refuse it. */
export type HostKeyVerifier = (server: string, fingerprint: string, target?: SshTarget) => void | Promise<void>;

/** Where recorded fingerprints live: inventory's server records in the platform, memory in tests. */
export interface HostKeyStore {
  get(server: string): string | undefined | Promise<string | undefined>;
  record(server: string, fingerprint: string): void | Promise<void>;
}

/**
 * Trust on first use: a server with no recorded key has the offered one
 * recorded; a different key later is refused with HOST_KEY_CHANGED until an
 * operator records the new one (store.record).
 */
export function trustOnFirstUse(store: HostKeyStore): HostKeyVerifier {
  return async (server, fingerprint) => {
    const recorded = await store.get(server);
    if (recorded === undefined) return store.record(server, fingerprint);
    if (recorded !== fingerprint) {
      throw new SshError(
        'HOST_KEY_CHANGED',
        `the host key of ${server} changed: ${recorded} is recorded, the server offered ${fingerprint}; accept the new key if the change is expected`,
      );
    }
  };
}

export class MemoryHostKeys implements HostKeyStore {
  private readonly keys = new Map<string, string>();

  get(server: string): string | undefined {
    return this.keys.get(server);
  }

  record(server: string, fingerprint: string): void {
    this.keys.set(server, fingerprint);
  }
}
