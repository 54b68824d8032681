/**
 * Incremental decoder for chunked request bodies (RFC 9112 7.1). Chunk extensions are
 * skipped, trailers are read and dropped. Malformed framing is an error (the connection is
 * then closed: its remaining bytes cannot be trusted).
 */
const SIZE = 0;
const SIZE_LF = 1;
const DATA = 2;
const DATA_CR = 3;
const DATA_LF = 4;
const TRAILER = 5;
const TRAILER_LF = 6;
const DONE = 7;

const MAX_LINE = 4096;

export interface ChunkSink {
  chunkData(data: Buffer): void;
}

export class ChunkedDecoder {
  private state = SIZE;
  private size = 0;
  private digits = 0;
  private inExt = false;
  private lineLen = 0;
  private remaining = 0;
  private trailerEmpty = true;
  error: string | null = null;

  get done(): boolean {
    return this.state === DONE;
  }

  /** Consumes from `buf[start..]`; returns the index after the last consumed byte. */
  feed(buf: Buffer, start: number, sink: ChunkSink): number {
    let i = start;
    const n = buf.length;
    while (i < n && this.state !== DONE && this.error === null) {
      const c = buf[i]!;
      switch (this.state) {
        case SIZE:
          if (++this.lineLen > MAX_LINE) return this.fail('chunk size line too long');
          if (c === 0x0d) this.state = SIZE_LF;
          else if (this.inExt) {
            // chunk-ext: skipped
          } else if (c === 0x3b || c === 0x20 || c === 0x09) this.inExt = true;
          else {
            const v = hex(c);
            if (v < 0 || this.digits >= 13) return this.fail('bad chunk size');
            this.size = this.size * 16 + v;
            this.digits++;
          }
          i++;
          break;
        case SIZE_LF:
          if (c !== 0x0a || this.digits === 0) return this.fail('bad chunk size line');
          i++;
          this.lineLen = 0;
          this.inExt = false;
          if (this.size === 0) {
            this.state = TRAILER;
            this.trailerEmpty = true;
          } else {
            this.remaining = this.size;
            this.state = DATA;
          }
          break;
        case DATA: {
          const take = Math.min(this.remaining, n - i);
          sink.chunkData(buf.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = DATA_CR;
          break;
        }
        case DATA_CR:
          if (c !== 0x0d) return this.fail('missing CRLF after chunk');
          this.state = DATA_LF;
          i++;
          break;
        case DATA_LF:
          if (c !== 0x0a) return this.fail('missing CRLF after chunk');
          this.state = SIZE;
          this.size = 0;
          this.digits = 0;
          i++;
          break;
        case TRAILER:
          if (++this.lineLen > MAX_LINE) return this.fail('trailer too long');
          if (c === 0x0d) this.state = TRAILER_LF;
          else this.trailerEmpty = false;
          i++;
          break;
        case TRAILER_LF:
          if (c !== 0x0a) return this.fail('bad trailer');
          i++;
          this.lineLen = 0;
          if (this.trailerEmpty) this.state = DONE;
          else {
            this.state = TRAILER;
            this.trailerEmpty = true;
          }
          break;
      }
    }
    return i;
  }

  private fail(reason: string): number {
    this.error = reason;
    return -1;
  }
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}
