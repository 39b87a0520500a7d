import { GroupCommit } from './group-commit.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('GroupCommit', () => {
  it('writes a lone call at once and gathers the calls made meanwhile into the next write', async () => {
    const batches: number[][] = [];
    const gate = deferred<void>();
    const commit = new GroupCommit<number, string>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await gate.promise;
      return items.map((n) => `#${n}`);
    });
    const first = commit.submit(1);
    const rest = [2, 3, 4].map((n) => commit.submit(n));
    expect(batches).toEqual([[1]]);
    gate.resolve();
    expect(await first).toBe('#1');
    expect(await Promise.all(rest)).toEqual(['#2', '#3', '#4']);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('never writes more than maxBatch items at once', async () => {
    const sizes: number[] = [];
    const gate = deferred<void>();
    const commit = new GroupCommit<number, number>(async (items) => {
      sizes.push(items.length);
      if (sizes.length === 1) await gate.promise;
      return items;
    }, { maxBatch: 3 });
    const all = Array.from({ length: 8 }, (_, n) => commit.submit(n));
    gate.resolve();
    expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sizes).toEqual([1, 3, 3, 1]);
  });

  it('fails only the bad item when a batch fails: the others are written on their own', async () => {
    const gate = deferred<void>();
    let calls = 0;
    const commit = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (calls === 1) await gate.promise;
      if (items.includes(13)) throw new Error('13 is refused');
      return items.map((n) => n * 2);
    });
    const first = commit.submit(1);
    const others = [12, 13, 14].map((n) => commit.submit(n).then((v) => ({ v }), (e: Error) => ({ e: e.message })));
    gate.resolve();
    await first;
    expect(await Promise.all(others)).toEqual([{ v: 24 }, { e: '13 is refused' }, { v: 28 }]);
  });

  it('rejects the batch when the write returns the wrong number of results, and keeps working', async () => {
    let broken = true;
    const commit = new GroupCommit<number, number>(async (items) => (broken ? [] : items));
    await expect(commit.submit(1)).rejects.toThrow('returned 0 results for 1 items');
    broken = false;
    await expect(commit.submit(2)).resolves.toBe(2);
  });
});
