import { Writable } from 'node:stream';
import { BatchedWriter, TailBuffer } from './job-output.js';

describe('TailBuffer', () => {
  test('keeps the last bytes across pieces and counts them all', () => {
    const tail = new TailBuffer(10);
    for (const piece of ['hello ', 'wonderful ', 'world', '!']) tail.push(Buffer.from(piece));
    expect(tail.total).toBe(22);
    expect(tail.truncated).toBe(true);
    expect(tail.text()).toBe('ful world!');
  });

  test('everything when it fits, and nothing is cut', () => {
    const tail = new TailBuffer(10);
    tail.push(Buffer.from('0123'));
    tail.push(Buffer.from('456789'));
    expect(tail.truncated).toBe(false);
    expect(tail.text()).toBe('0123456789');
    expect(new TailBuffer(10).text()).toBe('');
  });

  test('a cut inside a character starts the tail at the next whole one', () => {
    // "✓" is 3 bytes: the last 6 of "a✓✓b" (8 bytes) start inside the first "✓".
    const tail = new TailBuffer(6);
    tail.push(Buffer.from('a✓'));
    tail.push(Buffer.from('✓b'));
    expect(tail.text()).toBe('✓b');
    expect(tail.total).toBe(8);
  });

  test('holds at most the limit plus one piece', () => {
    const tail = new TailBuffer(1000);
    const piece = Buffer.alloc(300, 'x');
    for (let i = 0; i < 100; i++) tail.push(piece);
    expect(tail.total).toBe(30_000);
    expect((tail as unknown as { held: number }).held).toBeLessThanOrEqual(1300);
    expect(tail.text()).toBe('x'.repeat(1000));
  });

  test('clear starts over', () => {
    const tail = new TailBuffer(4);
    tail.push(Buffer.from('abcdef'));
    tail.clear();
    tail.push(Buffer.from('xy'));
    expect([tail.text(), tail.total, tail.truncated]).toEqual(['xy', 2, false]);
  });
});

/** A destination that takes `room` bytes before it reports backpressure, until drained by hand. */
function destination(room: number) {
  const writes: string[] = [];
  let buffered = 0;
  const out = new Writable({
    highWaterMark: room,
    write(chunk: Buffer, _encoding, done) {
      writes.push(chunk.toString());
      buffered += chunk.length;
      pending.push(done);
    },
  });
  const pending: Array<() => void> = [];
  return {
    out,
    writes,
    /** Lets the destination take everything written so far. */
    drain() {
      buffered = 0;
      for (const done of pending.splice(0)) done();
    },
    get buffered() {
      return buffered;
    },
  };
}

describe('BatchedWriter', () => {
  test('what is written in one tick goes out as one write, ASCII or not', async () => {
    const dest = destination(1024);
    const writer = new BatchedWriter(dest.out);
    void writer.write('a: 1\n\n', true);
    void writer.write('b: é\n\n');
    void writer.write('c: 3\n\n', true);
    expect(dest.writes).toEqual([]);
    await new Promise(setImmediate);
    expect(dest.writes).toEqual(['a: 1\n\nb: é\n\nc: 3\n\n']);
    dest.drain();
  });

  test('a batch past its size goes out at once', async () => {
    const dest = destination(1024);
    const writer = new BatchedWriter(dest.out, 8);
    void writer.write('12345');
    expect(dest.writes).toEqual([]);
    void writer.write('67890');
    expect(dest.writes).toEqual(['1234567890']);
    dest.drain();
  });

  test('a backed-up destination holds the writer back until it drains', async () => {
    const dest = destination(4);
    const writer = new BatchedWriter(dest.out, 4);
    let resumed = false;
    void writer.write('first').then(() => (resumed = true));
    await new Promise(setImmediate);
    expect(resumed).toBe(false);
    expect(dest.writes).toEqual(['first']);
    dest.drain();
    await new Promise(setImmediate);
    expect(resumed).toBe(true);
  });

  test('end writes what is left, then ends; later writes are dropped', async () => {
    const dest = destination(1024);
    const writer = new BatchedWriter(dest.out);
    const finished = new Promise((resolve) => dest.out.on('finish', resolve));
    void writer.write('last\n\n');
    writer.end();
    void writer.write('too late');
    dest.drain();
    await finished;
    expect(dest.writes).toEqual(['last\n\n']);
  });
});
