import { humanUptime } from './routes.js';

test('RustCI uptime is written as hours, minutes and seconds', () => {
  expect(humanUptime(9015)).toBe('2h 30m 15s');
  expect(humanUptime(0)).toBe('0h 0m 0s');
});
