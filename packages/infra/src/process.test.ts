import { freePort, isPortOpen } from './process.js';

test('freePort returns a port that nothing listens on', async () => {
  const port = await freePort();
  expect(port).toBeGreaterThan(0);
  expect(await isPortOpen(port)).toBe(false);
});
