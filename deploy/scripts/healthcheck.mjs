// Container HEALTHCHECK probe: GET a path on the service's own HTTP listener.
//   node healthcheck.mjs <METRICS|HTTP> [path]
// reads <PREFIX>_HOST and <PREFIX>_PORT, the variables the service listens on.
const prefix = process.argv[2] ?? 'METRICS';
const path = process.argv[3] ?? '/metrics';
const port = process.env[`${prefix}_PORT`];
const listen = process.env[`${prefix}_HOST`] ?? '';
// A wildcard listen address is reached over loopback.
const host = ['', '0.0.0.0', '::', '[::]'].includes(listen) ? '127.0.0.1' : listen.includes(':') ? `[${listen}]` : listen;

if (!port || port === '0') {
  console.error(`healthcheck: ${prefix}_PORT is not a fixed port`);
  process.exit(1);
}
try {
  const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(4000) });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
} catch (error) {
  console.error(`healthcheck: http://${host}:${port}${path}: ${error.message}`);
  process.exit(1);
}
