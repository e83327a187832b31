// Operations: each op this tab started or saw (a VM's op_id) is followed with GET /v1/ops/:id
// ?wait_ms=10000, which answers as soon as the op progresses or ends: a long poll, not a loop on
// a timer. Pages subscribe to see every op's latest state. The ops known are kept in
// sessionStorage (the Oracle has no route that lists operations), with finished activations
// feeding the activation-time histogram.
import { get, enc } from './api.js';

const KEY = 'vmx.ops';
const ops = new Map(); // id -> op
const following = new Set();
const subs = new Set();

try {
  for (const op of JSON.parse(sessionStorage.getItem(KEY) || '[]')) ops.set(op.id, op);
} catch { /* dropped */ }

function save() {
  const list = [...ops.values()].sort((a, b) => (b.created_ms || 0) - (a.created_ms || 0)).slice(0, 300);
  sessionStorage.setItem(KEY, JSON.stringify(list));
}

function emit(op) {
  for (const fn of [...subs]) { try { fn(op); } catch (e) { console.error(e); } }
}

export function subscribe(fn) { subs.add(fn); return () => subs.delete(fn); }
export function all() { return [...ops.values()].sort((a, b) => (b.created_ms || 0) - (a.created_ms || 0)); }
export function known(id) { return ops.get(id); }

export function note(op) {
  if (!op || !op.id) return;
  ops.set(op.id, op);
  save();
  emit(op);
  if (op.state === 'running') follow(op.id);
}

// Starts following an op by id (from a 202 answer or a VM's op_id); returns at once.
// At most 3 long polls at once: a browser holds 6 connections per host, and the live stream and
// the pages need theirs. The others wait their turn.
const MAX_FOLLOW = 3;
let active = 0;
const queue = [];

export function follow(id) {
  if (!id || following.has(id)) return;
  following.add(id);
  queue.push(id);
  pump();
}

function pump() {
  while (active < MAX_FOLLOW && queue.length) {
    const id = queue.shift();
    if (!following.has(id)) continue;
    active++;
    track(id).finally(() => { active--; pump(); });
  }
}

function track(id) {
  return (async () => {
    let errors = 0;
    while (following.has(id)) {
      try {
        const op = await get(`/v1/ops/${enc(id)}?wait_ms=10000`);
        errors = 0;
        const before = ops.get(id);
        ops.set(id, op);
        if (!before || JSON.stringify(before) !== JSON.stringify(op)) { save(); emit(op); }
        if (op.state !== 'running') break;
      } catch (e) {
        if (e.status === 401 || e.status === 404 || e.status === 403) break;
        if (++errors > 5) break;
        await new Promise(r => setTimeout(r, 2000 * errors));
      }
    }
    following.delete(id);
  })();
}

export function stopAll() { following.clear(); queue.length = 0; }

export function progressText(op) {
  const p = op.progress || {};
  const parts = [p.phase || op.state];
  if (p.total) parts.push(`${Math.round((100 * (p.done || 0)) / p.total)}%`);
  return parts.join(' ');
}

export function durationMs(op) {
  return op.state === 'running' ? null : (op.updated_ms || 0) - (op.created_ms || 0);
}
