import { createLogger, DEFAULT_REDACT_PATHS } from './logger.js';
import { startTelemetry, type Telemetry } from './telemetry.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(JSON.parse(line)) } };
}

describe('createLogger', () => {
  it('writes JSON lines whose base fields name the service', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'inventory', destination }).info({ server_id: 7 }, 'server created');

    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ service: 'inventory', level: 30, msg: 'server created', server_id: 7 });
    expect(lines[0]).not.toHaveProperty('pid');
    expect(lines[0]).not.toHaveProperty('hostname');
  });

  it('redacts secrets at the default paths and leaves ordinary fields alone', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'inventory', destination }).info({
      password: 'hunter2',
      token: 'ghr_abcdef',
      refreshToken: 'r-1',
      access_token: 'a-1',
      token_type: 'Bearer',
      headers: { authorization: 'Bearer xyz', 'content-type': 'application/json' },
      req: { method: 'POST', url: '/api/servers', headers: { authorization: 'Bearer xyz', host: '127.0.0.1' } },
      server: { host: '127.0.0.1', username: 'ubuntu', password: 'pw', private_key: '-----BEGIN RSA PRIVATE KEY-----' },
      github: { app: { privateKey: 'pem-data', secret: 'whsec', id: 42 } },
    });

    expect(lines[0]).toMatchObject({
      password: '[REDACTED]',
      token: '[REDACTED]',
      refreshToken: '[REDACTED]',
      access_token: '[REDACTED]',
      token_type: 'Bearer',
      headers: { authorization: '[REDACTED]', 'content-type': 'application/json' },
      req: { method: 'POST', url: '/api/servers', headers: { authorization: '[REDACTED]', host: '127.0.0.1' } },
      server: { host: '127.0.0.1', username: 'ubuntu', password: '[REDACTED]', private_key: '[REDACTED]' },
      github: { app: { privateKey: '[REDACTED]', secret: '[REDACTED]', id: 42 } },
    });
  });

  it('redacts secrets inside arrays two levels down', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'inventory', destination }).info({ servers: [{ host: 'a', ssh_key: 'k1' }, { host: 'b', password: 'p2' }] });

    expect(lines[0]).toMatchObject({ servers: [{ host: 'a', ssh_key: '[REDACTED]' }, { host: 'b', password: '[REDACTED]' }] });
  });

  it('redacts secrets in child bindings and in what serializers produce', () => {
    const { lines, destination } = capture();
    const child = createLogger({ service: 'gateway', destination }).child(
      { token: 'ghr_secret', reqId: 'r-1' },
      { serializers: { req: (req: { auth: string; url: string }) => ({ url: req.url, headers: { authorization: req.auth } }) } },
    );
    child.info({ req: { auth: 'Bearer abc', url: '/api/jobs' } }, 'incoming request');

    expect(lines[0]).toMatchObject({
      token: '[REDACTED]',
      reqId: 'r-1',
      req: { url: '/api/jobs', headers: { authorization: '[REDACTED]' } },
      msg: 'incoming request',
    });
  });

  it('leaves the message text alone even when it mentions a secret key', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'identity', destination }).info('rejected body {"password":"x"}');

    expect(lines[0]).toMatchObject({ msg: 'rejected body {"password":"x"}' });
  });

  it('lists one- and two-level wildcards for each secret field', () => {
    expect(DEFAULT_REDACT_PATHS).toEqual(
      expect.arrayContaining(['password', '*.password', '*.*.password', '*.authorization', '*.*.authorization', 'pem']),
    );
  });

  it('uses the given redactPaths instead of the defaults', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'scheduler', destination, redactPaths: ['job.env.API_KEY', 'job.env["X-TOKEN"]'] }).info({
      password: 'visible',
      job: { env: { API_KEY: 'k', 'X-TOKEN': 't', HOME: '/root' } },
    });

    expect(lines[0]).toMatchObject({
      password: 'visible',
      job: { env: { API_KEY: '[REDACTED]', 'X-TOKEN': '[REDACTED]', HOME: '/root' } },
    });
  });

  it('redacts by array index and wildcard', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'scheduler', destination, redactPaths: ['steps[0].*'] }).info({
      steps: [{ run: 'echo $SECRET' }, { run: 'ls' }],
    });

    expect(lines[0]).toMatchObject({ steps: [{ run: '[REDACTED]' }, { run: 'ls' }] });
  });

  it('drops lines below the configured level', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'executor', level: 'warn', destination });
    logger.info('quiet');
    logger.warn('loud');

    expect(lines.map((line) => line.msg)).toEqual(['loud']);
  });
});

describe('createLogger inside OpenTelemetry spans', () => {
  let telemetry: Telemetry;
  beforeAll(async () => {
    telemetry = await startTelemetry({ service: 'gateway', version: '0.0.0-test' });
  });
  afterAll(() => telemetry.shutdown());

  it('stamps a line logged inside an active span with that span’s trace_id and span_id', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'gateway', destination });

    const ids = telemetry.tracer.startActiveSpan('handle request', (span) => {
      logger.info('inside');
      span.end();
      return span.spanContext();
    });
    logger.info('outside');

    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[0]).toMatchObject({ msg: 'inside', trace_id: ids.traceId, span_id: ids.spanId });
    expect(lines[1]).toMatchObject({ msg: 'outside' });
    expect(lines[1]).not.toHaveProperty('trace_id');
    expect(lines[1]).not.toHaveProperty('span_id');
  });

  it('carries the trace across awaits within the span', async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ service: 'gateway', destination });

    const traceId = await telemetry.tracer.startActiveSpan('async work', async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      logger.info('after await');
      span.end();
      return span.spanContext().traceId;
    });

    expect(lines[0]).toMatchObject({ msg: 'after await', trace_id: traceId });
  });
});
