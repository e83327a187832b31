// Formatting and parsing of what the API carries: money as integer micro-units (six decimals,
// never floating point), periods in seconds (30d, 1h, 90m, 45s), sizes, times, and VM states as
// a text label with a shape (never by colour alone).
import { h } from './dom.js';

const MICRO = 1000000n;

// 1500000 -> "1.500000"; negative amounts keep their sign.
export function money(micro) {
  if (micro === null || micro === undefined) return '—';
  let v = BigInt(Math.trunc(Number(micro)));
  const neg = v < 0n;
  if (neg) v = -v;
  const whole = v / MICRO, frac = (v % MICRO).toString().padStart(6, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

// "12", "0.5", "1.000001" -> micro-units (a Number, exact up to 2^53); null when malformed or
// with more than six decimals.
export function parseMoney(text) {
  const m = /^\s*(\d+)(?:\.(\d{0,6}))?\s*$/.exec(String(text ?? ''));
  if (!m) return null;
  const v = BigInt(m[1]) * MICRO + BigInt((m[2] || '').padEnd(6, '0'));
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(v);
}

const UNITS = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];

// 2592000 -> "30d", 5400 -> "90m": the largest unit that divides it exactly.
export function duration(s) {
  if (s === null || s === undefined) return '—';
  s = Number(s);
  if (!s) return '0s';
  for (const [u, n] of UNITS) if (s % n === 0) return `${s / n}${u}`;
  return `${s}s`;
}

// "30d", "1h", "90m", "45s" or bare seconds -> seconds; null when malformed. 1 s .. 3650 d.
export function parseDuration(text) {
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/i.exec(String(text ?? ''));
  if (!m) return null;
  const n = Number(m[1]) * (m[2] ? UNITS.find(u => u[0] === m[2].toLowerCase())[1] : 1);
  return n >= 1 && n <= 3650 * 86400 ? n : null;
}

// A long human duration for estimates: 93784 -> "1 d 2 h".
export function longDuration(s) {
  if (s === null || s === undefined) return '—';
  s = Math.max(0, Math.round(Number(s)));
  const parts = [];
  for (const [u, n] of UNITS) {
    if (s >= n || (u === 's' && !parts.length)) {
      parts.push(`${Math.floor(s / n)} ${u}`);
      s %= n;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

export function rate(price, period) {
  return `${money(price)} / ${duration(period)}`;
}

export function mib(n) {
  if (n === null || n === undefined) return '—';
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} GiB`;
  // a machine's RAM (24105 MiB) reads better as 23.5 GiB; a guest's exact size stays in MiB
  if (n >= 4096) return `${(n / 1024).toFixed(1)} GiB`;
  return `${n} MiB`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  n = Number(n);
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

// Event times are epoch seconds (float); records carry epoch milliseconds.
export function time(t, ms = false) {
  if (t === null || t === undefined) return '—';
  const d = new Date(ms ? t : t * 1000);
  return d.toLocaleString(undefined, { hour12: false });
}

export function clock(t) {
  const d = new Date(t * 1000);
  return d.toLocaleTimeString(undefined, { hour12: false });
}

// Each state: a shape and a word. Transitional states share the "working" shape.
const SHAPES = {
  registered: '◇', stored: '■', loading: '◐', active: '●', suspended: '❚❚', failed: '✖',
  draining: '↓', up: '▲', down: '▼', running: '↻', done: '✔', ready: '✔', creating: '↻', deleting: '↻',
};
const STEADY = new Set(['registered', 'stored', 'loading', 'active', 'suspended', 'failed', 'up', 'down', 'done', 'ready']);

export function stateBadge(state, testid) {
  const s = state || 'unknown';
  const shape = SHAPES[s] || (STEADY.has(s) ? '•' : '↻');
  const kind = STEADY.has(s) ? s : 'working';
  return h(`span.state.state-${kind}`, { testid, 'data-state': s },
    h('span.state-icon', { 'aria-hidden': 'true' }, shape), h('span.state-label', s));
}
