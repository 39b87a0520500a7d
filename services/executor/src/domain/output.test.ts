import { PassThrough } from 'node:stream';
import { OutputPump, PgidMarker, type OutputChunk } from './output.js';

const MARKER = '\x1eRUNNERHUB-abc:';

test('the marker is taken out of stdout even when split across chunks, and what came before it is kept', () => {
  const marker = new PgidMarker(MARKER);
  const stream = Buffer.from(`motd noise\n${MARKER}4242\nhello\n`);
  const pieces = [stream.subarray(0, 13), stream.subarray(13, 20), stream.subarray(20, 27), stream.subarray(27)];
  const out = Buffer.concat(pieces.map((piece) => marker.take(piece)));
  expect(marker.pgid).toBe(4242);
  expect(Buffer.concat([out, marker.flush()]).toString()).toBe('motd noise\nhello\n');
});

test('without a marker every byte is still delivered', () => {
  const marker = new PgidMarker(MARKER);
  const out = Buffer.concat([marker.take(Buffer.from('no marker ')), marker.take(Buffer.from('here')), marker.flush()]);
  expect(marker.pgid).toBeUndefined();
  expect(out.toString()).toBe('no marker here');
});

test('a slow sink pauses the streams past the high-water mark and resumes them once it caught up', async () => {
  const stdout = new PassThrough();
  const delivered: OutputChunk[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const pump = new OutputPump(async (chunk) => {
    await gate;
    delivered.push(chunk);
  }, [stdout], () => {}, 10);
  pump.push('stdout', Buffer.from('12345'));
  expect(stdout.isPaused()).toBe(false);
  pump.push('stderr', Buffer.from('67890'));
  expect(stdout.isPaused()).toBe(true);
  release();
  await pump.drained();
  expect(stdout.isPaused()).toBe(false);
  expect(delivered.map((c) => [c.seq, c.stream, c.data.toString()])).toEqual([[0, 'stdout', '12345'], [1, 'stderr', '67890']]);
});
