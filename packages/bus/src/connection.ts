import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import { busMetrics, type BusMetrics } from './metrics.js';

/** The few logger methods the bus needs; a pino logger fits. */
export interface BusLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface BusOptions {
  servers: string | string[];
  /** Connection name shown by the NATS server, usually the service name. */
  name: string;
  logger: BusLogger;
  registry: Registry;
  /** Default timeout of a request when the call does not set one. */
  requestTimeoutMs?: number;
}

/** One NATS connection with what every caller of the bus needs beside it. */
export class Bus {
  readonly metrics: BusMetrics;
  readonly requestTimeoutMs: number;
  private js?: JetStreamClient;
  private jsm?: Promise<JetStreamManager>;
  private connected = true;

  private constructor(
    readonly nc: NatsConnection,
    readonly logger: BusLogger,
    readonly registry: Registry,
    requestTimeoutMs: number,
  ) {
    this.metrics = busMetrics(registry);
    this.requestTimeoutMs = requestTimeoutMs;
    void this.watchStatus();
  }

  /**
   * Connects and keeps reconnecting forever: a NATS restart must never need a
   * service restart. The first connect also waits for a server to come up.
   */
  static async connect(options: BusOptions): Promise<Bus> {
    const nc = await connect({
      servers: options.servers,
      name: options.name,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 10_000,
      // Capturing a stack for every request costs more than it tells us.
      noAsyncTraces: true,
    });
    return new Bus(nc, options.logger, options.registry, options.requestTimeoutMs ?? 5_000);
  }

  get isConnected(): boolean {
    return this.connected && !this.nc.isClosed();
  }

  jetstream(): JetStreamClient {
    this.js ??= jetstream(this.nc);
    return this.js;
  }

  jetstreamManager(): Promise<JetStreamManager> {
    this.jsm ??= jetstreamManager(this.nc);
    return this.jsm;
  }

  /** Lets in-flight messages finish, then closes. */
  async drain(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain();
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      switch (status.type) {
        case 'disconnect':
          this.connected = false;
          this.logger.warn({ server: status.server }, 'bus disconnected; reconnecting');
          break;
        case 'reconnect':
          this.connected = true;
          this.logger.info({ server: status.server }, 'bus reconnected');
          break;
        case 'error':
          this.logger.error({ err: status.error }, 'bus error');
          break;
        default:
          break;
      }
    }
  }
}
