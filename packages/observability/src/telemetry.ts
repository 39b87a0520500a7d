import { createRequire, register, syncBuiltinESMExports } from 'node:module';
import type { FastifyOtelInstrumentation } from '@fastify/otel';
import { context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

export interface Telemetry {
  tracer: Tracer;
  shutdown(): Promise<void>;
  fastifyPlugin(): unknown;
}

export interface TelemetryOptions {
  service: string;
  version: string;
  otlpEndpoint?: string;
}

const require = createRequire(import.meta.url);

let running = false;
let loaderHookTried = false;
let loaderHookAcknowledged: (() => Promise<void>) | undefined;

// ESM imports bypass require-in-the-middle, so instrumentations only see `import pg from 'pg'`
// through import-in-the-middle's loader hook. The message channel limits wrapping to the
// modules an instrumentation asked for; a process can register the hook only once.
async function registerLoaderHook(): Promise<void> {
  if (loaderHookTried) return;
  loaderHookTried = true;
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  try {
    register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
    loaderHookAcknowledged = waitForAllMessagesAcknowledged;
  } catch (err) {
    // Jest's ESM sandbox, for one, refuses module.register(); spans from the API still work there.
    process.emitWarning(
      `ES module instrumentation is off (${(err as Error).message.split('\n', 1)[0]})`,
      'TelemetryWarning',
    );
  }
}

function noopFastifyPlugin(_app: unknown, _opts: unknown, done: () => void): void {
  done();
}
Object.assign(noopFastifyPlugin, { [Symbol.for('skip-override')]: true });

export async function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  // OTEL_SDK_DISABLED is the standard OpenTelemetry switch for turning tracing off.
  if (process.env.OTEL_SDK_DISABLED === 'true') {
    return {
      tracer: trace.getTracer(opts.service, opts.version),
      shutdown: async () => {},
      fastifyPlugin: () => noopFastifyPlugin,
    };
  }
  if (running) {
    throw new Error('startTelemetry: telemetry is already running in this process; shut it down first');
  }
  running = true;

  // The exporter and instrumentations load only when spans are exported: they
  // are most of this package's memory (about 20 MB per process).
  const exporter = opts.otlpEndpoint ? await createExporter(opts.otlpEndpoint) : undefined;
  const provider = new NodeTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: opts.service, [ATTR_SERVICE_VERSION]: opts.version }),
    ),
    spanProcessors: exporter ? [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500 })] : [],
    // Without an exporter, recording spans would be work for nothing: spans stay
    // non-recording but still carry trace ids for propagation and log lines.
    ...(opts.otlpEndpoint ? {} : { sampler: new AlwaysOffSampler() }),
  });
  // The default context manager is AsyncLocalStorage; the propagator is spelled out so that
  // OTEL_PROPAGATORS cannot silently change what travels in NATS headers.
  provider.register({
    propagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  });

  // Instrumentation (and the loader thread its ES module hook needs, about 25 MB
  // per process) only pays off when spans are exported.
  const instrumented = opts.otlpEndpoint ? await instrument(provider) : undefined;

  let stopped: Promise<void> | undefined;
  return {
    tracer: provider.getTracer(opts.service, opts.version),
    fastifyPlugin: () => instrumented?.fastify.plugin() ?? noopFastifyPlugin,
    shutdown: () =>
      (stopped ??= (async () => {
        instrumented?.unregister();
        await provider.shutdown();
        trace.disable();
        context.disable();
        propagation.disable();
        running = false;
      })()),
  };
}

async function createExporter(endpoint: string) {
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` });
}

async function instrument(provider: NodeTracerProvider): Promise<{ fastify: FastifyOtelInstrumentation; unregister(): void }> {
  await registerLoaderHook();
  const [{ FastifyOtelInstrumentation }, { registerInstrumentations }, { HttpInstrumentation }, { IORedisInstrumentation }, { PgInstrumentation }] = await Promise.all([
    import('@fastify/otel'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-pg'),
  ]);
  // Every Prometheus scrape of /metrics (a metrics server's or the gateway's) would otherwise be a trace.
  const fastifyOtel = new FastifyOtelInstrumentation({ ignorePaths: (route) => route.url === '/metrics' });
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => req.url?.split('?', 1)[0] === '/metrics' }),
      new PgInstrumentation(),
      new IORedisInstrumentation(),
      fastifyOtel,
    ],
  });
  await loaderHookAcknowledged?.();
  // instrumentation-http patches http only once, through whichever of require or import loads it
  // first; patch it now through require and copy the result into the builtin ES module namespaces,
  // so that `import { request } from 'node:http'` is traced however the service loads it.
  require('node:http');
  require('node:https');
  syncBuiltinESMExports();
  return {
    fastify: fastifyOtel,
    unregister() {
      unregister();
      syncBuiltinESMExports();
    },
  };
}
