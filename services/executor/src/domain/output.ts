import type { Readable } from 'node:stream';

export type StreamName = 'stdout' | 'stderr';

export interface OutputChunk {
  /** 0, 1, 2, … across both streams, in the order the bytes arrived. */
  seq: number;
  stream: StreamName;
  data: Buffer;
  at: Date;
}

/** Receives chunks one at a time, in order; a returned promise holds back the next chunk (and, past a limit, the remote process). */
export type OutputSink = (chunk: OutputChunk) => void | Promise<void>;

/** The most raw bytes one chunk carries (OutputChunk in executor.proto). */
export const MAX_CHUNK_BYTES = 64 * 1024;

interface PendingChunk {
  stream: StreamName;
  parts: Buffer[];
  bytes: number;
  at: Date;
}

/**
 * Delivers a command's output to a sink in order, one chunk at a time.
 * Output that arrives before the sink takes the last chunk (in the same tick,
 * as several SSH packets of one socket read do, or while the sink is busy)
 * joins that chunk, up to MAX_CHUNK_BYTES: fast output travels in few large
 * chunks, output that trickles goes out at once. When the sink falls behind
 * by more than `highWaterBytes`, both streams are paused: ssh2 then stops
 * widening the channel's window, sshd stops reading the command's pipes, and
 * the command blocks on write. Memory stays bounded by this limit plus one
 * SSH window (2 MiB) whatever the command prints.
 */
export class OutputPump {
  private seq = 0;
  private queuedBytes = 0;
  private paused = false;
  private readonly queue: PendingChunk[] = [];
  private delivering: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly sink: OutputSink,
    private readonly streams: Readable[],
    private readonly onFailure: (error: unknown) => void,
    private readonly highWaterBytes = 1024 * 1024,
    private readonly maxChunkBytes = MAX_CHUNK_BYTES,
  ) {}

  push(stream: StreamName, data: Buffer): void {
    if (data.length === 0) return;
    this.queuedBytes += data.length;
    for (let offset = 0; offset < data.length; ) {
      let last = this.queue.at(-1);
      if (!last || last.stream !== stream || last.bytes === this.maxChunkBytes) {
        last = { stream, parts: [], bytes: 0, at: new Date() };
        this.queue.push(last);
      }
      const part = data.subarray(offset, offset + this.maxChunkBytes - last.bytes);
      last.parts.push(part);
      last.bytes += part.length;
      offset += part.length;
    }
    if (!this.paused && this.queuedBytes >= this.highWaterBytes) this.setPaused(true);
    this.delivering ??= this.deliver();
  }

  /** Resolves once every chunk pushed so far reached the sink; rejects with the sink's error if it failed. */
  async drained(): Promise<void> {
    while (this.delivering) await this.delivering;
    if (this.failure !== undefined) throw this.failure;
  }

  private async deliver(): Promise<void> {
    // Let the rest of this tick's output join the first chunk.
    await Promise.resolve();
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      const data = next.parts.length === 1 ? next.parts[0]! : Buffer.concat(next.parts, next.bytes);
      try {
        if (this.failure === undefined) await this.sink({ seq: this.seq++, stream: next.stream, data, at: next.at });
      } catch (error) {
        this.failure = error;
        this.onFailure(error);
      } finally {
        this.queuedBytes -= next.bytes;
        if (this.paused && this.queuedBytes < this.highWaterBytes / 2) this.setPaused(false);
      }
    }
    this.delivering = undefined;
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    for (const stream of this.streams) {
      if (paused) stream.pause();
      else stream.resume();
    }
  }
}

/**
 * Takes the process-group marker (`<marker><pgid>\n`, printed before the
 * command starts) out of stdout. Anything before it (a noisy login script)
 * is passed on as output.
 */
export class PgidMarker {
  pgid: number | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private readonly tag: Buffer;

  constructor(marker: string) {
    this.tag = Buffer.from(marker);
  }

  /** The command's own bytes in `data`, once the marker is out of the way. */
  take(data: Buffer): Buffer {
    if (this.pgid !== undefined) return data;
    const buffer = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    const start = buffer.indexOf(this.tag);
    if (start >= 0) {
      const end = buffer.indexOf(0x0a, start);
      if (end < 0) {
        this.pending = buffer.subarray(start);
        return buffer.subarray(0, start);
      }
      this.pgid = Number.parseInt(buffer.subarray(start + this.tag.length, end).toString(), 10);
      this.pending = Buffer.alloc(0);
      return Buffer.concat([buffer.subarray(0, start), buffer.subarray(end + 1)]);
    }
    // Keep a tail that may be the start of a marker split across chunks.
    const keep = Math.min(buffer.length, this.tag.length - 1);
    this.pending = buffer.subarray(buffer.length - keep);
    return buffer.subarray(0, buffer.length - keep);
  }

  /** Whatever was held back when stdout ends without a marker. */
  flush(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }
}
