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

/** A sink that records chunks; `hold` keeps it busy until released. */
function recorder() {
  const delivered: OutputChunk[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;
  return {
    delivered,
    hold() {
      gate = new Promise<void>((resolve) => (release = resolve));
    },
    release: () => release(),
    sink: async (chunk: OutputChunk) => {
      delivered.push(chunk);
      await gate;
    },
  };
}

const summary = (chunks: OutputChunk[]) => chunks.map((c) => [c.seq, c.stream, c.data.toString()]);

test('output of one tick travels as one chunk; later output as the next one', async () => {
  const sink = recorder();
  const pump = new OutputPump(sink.sink, [], () => {});
  pump.push('stdout', Buffer.from('one '));
  pump.push('stdout', Buffer.from('two '));
  pump.push('stdout', Buffer.from('three'));
  await pump.drained();
  pump.push('stdout', Buffer.from('four'));
  await pump.drained();
  expect(summary(sink.delivered)).toEqual([[0, 'stdout', 'one two three'], [1, 'stdout', 'four']]);
});

test('while the sink is busy output piles up into chunks of at most the maximum size, stdout and stderr apart and in order', async () => {
  const sink = recorder();
  const pump = new OutputPump(sink.sink, [], () => {}, 1024 * 1024, 8);
  sink.hold();
  pump.push('stdout', Buffer.from('first'));
  await new Promise(setImmediate);
  // The sink now holds the first chunk; everything else waits and merges.
  expect(sink.delivered).toHaveLength(1);
  pump.push('stdout', Buffer.from('abcdef'));
  pump.push('stdout', Buffer.from('ghijklmnopq'));
  pump.push('stderr', Buffer.from('err1'));
  pump.push('stderr', Buffer.from('err2'));
  pump.push('stdout', Buffer.from('rs'));
  sink.release();
  await pump.drained();
  expect(summary(sink.delivered)).toEqual([
    [0, 'stdout', 'first'],
    [1, 'stdout', 'abcdefgh'],
    [2, 'stdout', 'ijklmnop'],
    [3, 'stdout', 'q'],
    [4, 'stderr', 'err1err2'],
    [5, 'stdout', 'rs'],
  ]);
});

test('a failing sink stops delivery and drained() reports its error', async () => {
  const failures: unknown[] = [];
  const pump = new OutputPump(async () => {
    throw new Error('publish failed');
  }, [], (error) => failures.push(error));
  pump.push('stdout', Buffer.from('lost'));
  await expect(pump.drained()).rejects.toThrow('publish failed');
  pump.push('stdout', Buffer.from('also lost'));
  await expect(pump.drained()).rejects.toThrow('publish failed');
  expect(failures).toHaveLength(1);
});
