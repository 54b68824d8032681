/**
 * Strict HTTP/1.1 request-head parser (RFC 9112) for the proxy's own downstream server.
 * No regexes: character classes are lookup tables. Rejections that matter for request
 * smuggling are deliberate: obs-fold, Content-Length together with Transfer-Encoding,
 * differing Content-Lengths, a Transfer-Encoding other than a final `chunked`, duplicate Host.
 */

/** tchar (RFC 9110 5.6.2). */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}

export const BodyMode = { None: 0, Length: 1, Chunked: 2 } as const;

export interface RequestHead {
  method: string;
  target: string;
  /** 10 for HTTP/1.0, 11 for HTTP/1.1. */
  version: number;
  rawHeaders: string[];
  bodyMode: number;
  contentLength: number;
  /** The client asked for (or its version implies) a persistent connection. */
  keepAlive: boolean;
  expectContinue: boolean;
  hasHost: boolean;
}

/** A parse failure with the status to answer (400, 431, 501, 505). */
export class HeadError {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {}
}

export interface HeadLimits {
  maxHeaders: number;
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return false;
  }
  return true;
}

/** Field values: visible chars, SP, HTAB and obs-text; no CR, LF, NUL or other controls. */
function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/** Request targets: visible US-ASCII only (no spaces or controls). */
function isTarget(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function isDigits(s: string): boolean {
  if (s.length === 0 || s.length > 15) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Parses the head text (request line + header lines, without the final blank line). */
export function parseHead(head: string, limits: HeadLimits): RequestHead | HeadError {
  let eol = head.indexOf('\r\n');
  if (eol === -1) eol = head.length;
  const line = head.slice(0, eol);
  const sp1 = line.indexOf(' ');
  const sp2 = line.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1 || line.indexOf(' ', sp2 + 1) !== -1)
    return new HeadError(400, 'bad request line');
  const method = line.slice(0, sp1);
  const target = line.slice(sp1 + 1, sp2);
  const proto = line.slice(sp2 + 1);
  if (!isToken(method) || !isTarget(target)) return new HeadError(400, 'bad request line');
  let version: number;
  if (proto === 'HTTP/1.1') version = 11;
  else if (proto === 'HTTP/1.0') version = 10;
  else if (proto.length === 8 && proto.startsWith('HTTP/')) return new HeadError(505, 'unsupported version');
  else return new HeadError(400, 'bad request line');

  const rawHeaders: string[] = [];
  let contentLength = -1;
  let chunked = false;
  let hasTe = false;
  let hosts = 0;
  let connClose = false;
  let connKeepAlive = false;
  let expectContinue = false;
  let pos = eol + 2;
  while (pos < head.length) {
    let next = head.indexOf('\r\n', pos);
    if (next === -1) next = head.length;
    const h = head.slice(pos, next);
    pos = next + 2;
    const c0 = h.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) return new HeadError(400, 'obsolete line folding');
    const colon = h.indexOf(':');
    if (colon <= 0) return new HeadError(400, 'bad header line');
    const name = h.slice(0, colon);
    if (!isToken(name)) return new HeadError(400, 'bad header name');
    const value = trimOws(h.slice(colon + 1));
    if (!isFieldValue(value)) return new HeadError(400, 'bad header value');
    if (rawHeaders.length >= limits.maxHeaders * 2) return new HeadError(431, 'too many headers');
    rawHeaders.push(name, value);
    const n = name.length;
    if (n === 4 || n === 6 || n === 10 || n === 14 || n === 17) {
      const lower = name.toLowerCase();
      if (lower === 'host') hosts++;
      else if (lower === 'content-length') {
        if (!isDigits(value)) return new HeadError(400, 'bad content-length');
        const v = Number(value);
        if (contentLength !== -1 && contentLength !== v)
          return new HeadError(400, 'conflicting content-length');
        contentLength = v;
      } else if (lower === 'transfer-encoding') {
        hasTe = true;
        // Only a final `chunked` is understood; anything else cannot be framed safely.
        const codings = value.toLowerCase().split(',');
        const last = trimOws(codings[codings.length - 1]!);
        if (last !== 'chunked' || codings.length > 1)
          return new HeadError(501, 'unsupported transfer-encoding');
        if (chunked) return new HeadError(400, 'repeated transfer-encoding');
        chunked = true;
      } else if (lower === 'connection') {
        for (const t of value.toLowerCase().split(',')) {
          const token = trimOws(t);
          if (token === 'close') connClose = true;
          else if (token === 'keep-alive') connKeepAlive = true;
        }
      } else if (lower === 'expect') {
        expectContinue = value.toLowerCase() === '100-continue';
      }
    }
  }
  if (hasTe && contentLength !== -1) return new HeadError(400, 'content-length with transfer-encoding');
  if (hosts > 1) return new HeadError(400, 'duplicate host');
  if (hosts === 0 && version === 11 && !isAbsoluteForm(target)) return new HeadError(400, 'missing host');
  if (hasTe && version === 10) return new HeadError(400, 'transfer-encoding in HTTP/1.0');
  return {
    method,
    target,
    version,
    rawHeaders,
    bodyMode: chunked ? BodyMode.Chunked : contentLength > 0 ? BodyMode.Length : BodyMode.None,
    contentLength: chunked ? -1 : Math.max(contentLength, 0),
    keepAlive: version === 11 ? !connClose : connKeepAlive && !connClose,
    expectContinue: expectContinue && version === 11,
    hasHost: hosts === 1,
  };
}

/** `http://` or `https://` (case-insensitive), without regexes. */
export function isAbsoluteForm(target: string): boolean {
  if (target.length < 8) return false;
  const c0 = target.charCodeAt(0) | 0x20;
  if (c0 !== 0x68) return false; // h
  const lower = target.slice(0, 8).toLowerCase();
  return lower.startsWith('http://') || lower === 'https://';
}
