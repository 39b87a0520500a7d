import CircuitBreaker from 'opossum';
import { isSshError, SshError } from './ssh-errors.js';

export interface BreakerOptions {
  /** How long an open breaker fails fast before one request probes the host again. */
  resetTimeoutMs?: number;
  /** Failures are judged over this window… */
  rollingWindowMs?: number;
  /** …once at least this many requests were made in it… */
  volumeThreshold?: number;
  /** …when more than this share of them failed. */
  errorThresholdPercentage?: number;
  onStateChange?: (server: string, state: 'open' | 'halfOpen' | 'close') => void;
}

type Call = () => Promise<unknown>;

/**
 * One circuit breaker per host (host:port). Only outages count: an
 * unreachable host, timeouts, lost connections. A refused password or a
 * changed host key is an answer from a healthy host and never trips it.
 */
export class HostBreakers {
  private readonly breakers = new Map<string, CircuitBreaker<[Call], unknown>>();

  constructor(private readonly options: BreakerOptions = {}) {}

  async run<T>(server: string, call: () => Promise<T>): Promise<T> {
    try {
      return (await this.breakerFor(server).fire(call)) as T;
    } catch (error) {
      if ((error as { code?: string }).code === 'EOPENBREAKER') {
        throw new SshError('BREAKER_OPEN', `${server} failed repeatedly and is paused: requests fail at once for up to ${this.resetTimeoutMs} ms, then one is tried again`);
      }
      throw error;
    }
  }

  state(server: string): 'open' | 'halfOpen' | 'closed' {
    const breaker = this.breakers.get(server);
    if (!breaker || breaker.closed) return 'closed';
    return breaker.halfOpen ? 'halfOpen' : 'open';
  }

  shutdown(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
    this.breakers.clear();
  }

  private get resetTimeoutMs(): number {
    return this.options.resetTimeoutMs ?? 10_000;
  }

  private breakerFor(server: string): CircuitBreaker<[Call], unknown> {
    let breaker = this.breakers.get(server);
    if (!breaker) {
      breaker = new CircuitBreaker((call: Call) => call(), {
        // Connect and handshake carry their own timeouts.
        timeout: false,
        resetTimeout: this.resetTimeoutMs,
        rollingCountTimeout: this.options.rollingWindowMs ?? 10_000,
        volumeThreshold: this.options.volumeThreshold ?? 3,
        errorThresholdPercentage: this.options.errorThresholdPercentage ?? 50,
        errorFilter: (error: unknown) => !(isSshError(error) && error.outage),
      });
      breaker.on('open', () => this.options.onStateChange?.(server, 'open'));
      breaker.on('halfOpen', () => this.options.onStateChange?.(server, 'halfOpen'));
      breaker.on('close', () => this.options.onStateChange?.(server, 'close'));
      this.breakers.set(server, breaker);
    }
    return breaker;
  }
}
