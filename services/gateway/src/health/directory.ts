import { createClient, discoverServices, ownerToken, type Bus } from '@runnerhub/bus';
import { Health, type HealthCheckResponse } from '@runnerhub/contracts';

export interface ServiceHealth {
  name: string;
  status: 'healthy' | 'unhealthy';
  version: string;
  instances: number;
  dependencies: Record<string, string>;
  message?: string;
}

interface KnownService {
  version: string;
  instances: number;
  lastSeen: number;
}

/**
 * What services exist, learnt only from $SRV discovery. A service once seen
 * stays known, so a stopped service is reported unhealthy instead of vanishing.
 */
export class ServiceDirectory {
  private readonly known = new Map<string, KnownService>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly bus: Bus,
    private readonly self: string,
    private readonly checkTimeoutMs: number,
  ) {}

  start(intervalMs: number): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  names(): string[] {
    return [...this.known.keys()].sort();
  }

  async refresh(): Promise<void> {
    try {
      const found = await discoverServices(this.bus, 300);
      const counts = new Map<string, { version: string; instances: number }>();
      for (const info of found) {
        const entry = counts.get(info.name) ?? { version: info.version, instances: 0 };
        entry.instances += 1;
        counts.set(info.name, entry);
      }
      for (const [name, entry] of counts) this.known.set(name, { ...entry, lastSeen: Date.now() });
      for (const [name, known] of this.known) if (!counts.has(name)) known.instances = 0;
    } catch (error) {
      this.bus.logger.warn({ err: error }, 'service discovery failed');
    }
  }

  /** Asks every known service (but the gateway itself) for its health, in parallel. */
  async checkAll(): Promise<ServiceHealth[]> {
    const names = this.names().filter((name) => name !== this.self);
    return Promise.all(names.map((name) => this.check(name)));
  }

  private async check(name: string): Promise<ServiceHealth> {
    const known = this.known.get(name)!;
    try {
      const reply: HealthCheckResponse = await createClient(this.bus, Health, ownerToken(name)).check({}, { timeoutMs: this.checkTimeoutMs });
      return {
        name,
        status: reply.status === 'healthy' ? 'healthy' : 'unhealthy',
        version: reply.version,
        instances: known.instances,
        dependencies: Object.fromEntries(reply.dependencies.map((d) => [d.name, d.status])),
      };
    } catch (error) {
      return { name, status: 'unhealthy', version: known.version, instances: 0, dependencies: {}, message: (error as Error).message };
    }
  }
}
