// Live updates for every page from one stream: GET /v1/events/stream (server-sent events), read
// with fetch() and a stream reader because EventSource cannot send the Authorization header.
// The SSE text is parsed here (id:, event:, data:, ":" comments). Messages to subscribers:
//   {type: 'event', data: {id, time, kind, vm, service, rm, reason}}   a store event
//   {type: 'vm', data: VM object}                                       a VM changed
//   {type: 'resync'}      after a reconnect: VM changes may have been missed, refetch
//   {type: 'status', data: 'connecting'|'live'|'reconnecting'|'polling'|'forbidden'|'off'}
// After an error it reconnects with Last-Event-ID and a growing backoff (1 s .. 30 s); a stream
// silent for 45 s (three missed keepalives) is dropped and reopened.
//
// Until an Oracle serves the stream (404), roles that may read events fall back to reading
// GET /v1/events?after=ID every 5 s and fetching the VMs those events name: the same messages,
// at most every 5 s, one loop for the whole app.
import * as session from './session.js';
import { get, enc, sessionExpired } from './api.js';

const subs = new Set();
let status = 'off';
let lastId = null;
let ctrl = null;
let running = false;
let generation = 0;

export function subscribe(fn) {
  subs.add(fn);
  fn({ type: 'status', data: status });
  if (!running && session.token()) start();
  return () => subs.delete(fn);
}

export function currentStatus() { return status; }
export function lastEventId() { return lastId; }

function emit(msg) {
  for (const fn of [...subs]) {
    try { fn(msg); } catch (e) { console.error('live subscriber', e); }
  }
}

function setStatus(s) {
  if (s === status) return;
  status = s;
  emit({ type: 'status', data: s });
}

export function stop() {
  generation++;
  running = false;
  if (ctrl) ctrl.abort();
  ctrl = null;
  setStatus('off');
}

session.onChange(w => { if (!w) { stop(); lastId = null; } else if (subs.size) start(); });

export function start() {
  stop();
  running = true;
  const gen = generation;
  run(gen);
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

async function run(gen) {
  let backoff = 1000;
  let first = true;
  while (gen === generation) {
    setStatus(first ? 'connecting' : 'reconnecting');
    const tok = session.token();
    if (!tok) { stop(); return; }
    const headers = { Authorization: `Bearer ${tok}`, Accept: 'text/event-stream' };
    if (lastId !== null) headers['Last-Event-ID'] = String(lastId);
    ctrl = new AbortController();
    const myCtrl = ctrl;
    let res = null;
    try {
      res = await fetch('/v1/events/stream', { headers, signal: myCtrl.signal, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      res = null;
    }
    if (gen !== generation) return;
    if (res && res.status === 401) { sessionExpired(); return; }
    if (res && res.status === 403) { setStatus('forbidden'); running = false; return; }
    if (res && (res.status === 404 || res.status === 405)) { poll(gen); return; }
    if (res && res.ok && res.body) {
      if (!first) emit({ type: 'resync' });
      first = false;
      setStatus('live');
      backoff = 1000;
      try {
        await read(res.body, myCtrl, gen);
      } catch { /* dropped: reconnect below */ }
      if (gen !== generation) return;
    }
    first = false;
    setStatus('reconnecting');
    await sleep(backoff + Math.random() * 500);
    backoff = Math.min(backoff * 2, 30000);
  }
}

async function read(body, myCtrl, gen) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { data: [], event: '', id: null };
  let watchdog = null;
  const pet = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => myCtrl.abort(), 45000);
  };
  pet();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || gen !== generation) break;
      pet();
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          dispatch(ev);
          ev = { data: [], event: '', id: null };
          continue;
        }
        if (line[0] === ':') continue; // keepalive comment
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val[0] === ' ') val = val.slice(1);
        if (name === 'data') ev.data.push(val);
        else if (name === 'event') ev.event = val;
        else if (name === 'id') ev.id = val;
      }
    }
  } finally {
    clearTimeout(watchdog);
    reader.cancel().catch(() => {});
  }
}

function dispatch(ev) {
  if (ev.id !== null && /^\d+$/.test(ev.id)) lastId = Number(ev.id);
  if (!ev.data.length) return;
  let data;
  try { data = JSON.parse(ev.data.join('\n')); } catch { return; }
  const type = ev.event || 'message';
  if (type === 'event' && data && typeof data.id === 'number') lastId = Math.max(lastId ?? 0, data.id);
  emit({ type, data });
}

// ---- the fallback while the Oracle has no stream ----

async function poll(gen) {
  if (!session.can(session.who()?.role, 'events')) { setStatus('forbidden'); running = false; return; }
  setStatus('polling');
  try {
    if (lastId === null) lastId = await latestEventId();
  } catch { lastId = 0; }
  while (gen === generation) {
    await sleep(5000);
    if (gen !== generation) return;
    let events = [];
    try {
      events = await get(`/v1/events?after=${lastId}&limit=1000`);
    } catch (e) {
      if (e.status === 401) return;
      continue;
    }
    const vms = new Set();
    for (const e of events) {
      lastId = Math.max(lastId, e.id);
      emit({ type: 'event', data: e });
      if (e.vm) vms.add(e.vm);
    }
    for (const name of vms) {
      try {
        emit({ type: 'vm', data: await get(`/v1/vms/${enc(name)}`) });
      } catch (e) {
        if (e.status === 404) emit({ type: 'vm', data: { name, state: 'deleted', deleted: true, actions: [] } });
      }
    }
  }
}

// The newest event's id, found with small requests (limit=1) by doubling then bisecting, since
// GET /v1/events only pages forward from an id.
export async function latestEventId() {
  const has = async after => (await get(`/v1/events?after=${after}&limit=1`)).length > 0;
  if (!(await has(0))) return 0;
  let lo = 0, hi = 1;
  while (await has(hi)) { lo = hi; hi *= 2; }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await has(mid)) lo = mid; else hi = mid;
  }
  return hi;
}

// The last n events (oldest first), for pages that show a history before the live part.
export async function recentEvents(n = 200) {
  const last = await latestEventId();
  if (!last) return [];
  const out = [];
  let after = Math.max(0, last - n);
  for (;;) {
    const page = await get(`/v1/events?after=${after}&limit=${Math.min(n, 10000)}`);
    out.push(...page);
    if (page.length < Math.min(n, 10000) || out.length >= n) break;
    after = page[page.length - 1].id;
  }
  return out.slice(-n);
}
