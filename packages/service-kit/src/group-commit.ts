interface Pending<I, O> {
  item: I;
  resolve(result: O): void;
  reject(error: unknown): void;
}

/**
 * Coalesces concurrent writes into batches, as a database's group commit
 * does: a call made while nothing is being written is written at once (no
 * added latency when idle); calls made while a write is in flight wait and go
 * together in the next one. One write runs at a time, so batches keep the
 * order of the calls. When a batch of several fails, each item is written on
 * its own, so one bad item fails alone.
 */
export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private writing = false;

  constructor(
    /** Writes the items and returns one result per item, in the same order. */
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly options: { maxBatch?: number } = {},
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? 500);
        try {
          await this.settle(batch);
        } catch (error) {
          if (batch.length === 1) batch[0]!.reject(error);
          else for (const pending of batch) await this.settle([pending]).catch((alone: unknown) => pending.reject(alone));
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async settle(batch: Pending<I, O>[]): Promise<void> {
    const results = await this.write(batch.map((pending) => pending.item));
    if (results.length !== batch.length) throw new Error(`a batch write returned ${results.length} results for ${batch.length} items`);
    batch.forEach((pending, i) => pending.resolve(results[i]!));
  }
}
