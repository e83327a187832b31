// Browser consoles of a VM. A single-use ticket (POST /v1/vms/NAME/console-ticket {"kind":
// "serial"|"vnc"} -> {ticket, url, expires_s}) opens a WebSocket to `url` on this host within
// 30 s. Serial: xterm.js with its attach and fit add-ons, raw bytes both ways (binaryType
// arraybuffer). Graphical: noVNC's RFB on the socket URL (sub-protocol "binary"). When the socket
// closes (the VM stopped, the RM went away) the panel says so and offers to reconnect, which
// takes a new ticket.
import { h, loadCss } from './dom.js';
import { post, enc } from './api.js';

function wsUrl(url) {
  if (/^wss?:\/\//.test(url)) return url;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${url.startsWith('/') ? '' : '/'}${url}`;
}

async function ticket(vm, kind) {
  return post(`/v1/vms/${enc(vm)}/console-ticket`, { kind });
}

// openConsole(container, vm, kind) -> {close()}; the container gets a status line, the screen and
// a reconnect button.
export function openConsole(container, vm, kind) {
  const status = h('span', { testid: `${kind}-console-status`, role: 'status' }, 'Connecting…');
  const reconnect = h('button', { type: 'button', hidden: true, testid: `${kind}-console-reconnect` }, 'Reconnect');
  const closeBtn = h('button', { type: 'button', testid: `${kind}-console-close` }, 'Close console');
  const extra = h('span.console-extra');
  const screen = h(`div.console${kind === 'vnc' ? '.console-vnc' : ''}`, {
    testid: kind === 'vnc' ? 'vnc-console' : 'serial-console',
    'aria-label': kind === 'vnc' ? `Graphical console of ${vm}` : `Serial console of ${vm}`,
  });
  const panel = h('div.card', h('h3', kind === 'vnc' ? 'Graphical console' : 'Serial console'),
    h('div.console-bar', status, reconnect, extra, closeBtn), screen);
  container.replaceChildren(panel);
  let session = null;
  let closed = false;

  const say = (text, state) => { status.textContent = text; status.dataset.state = state; };
  const start = async () => {
    reconnect.hidden = true;
    say('Asking for a console ticket…', 'connecting');
    let t;
    try {
      t = await ticket(vm, kind);
    } catch (e) {
      if (e.status === 401) return;
      say(e.status === 404 && /console-ticket|no such|not_found/i.test(`${e.code} ${e.message}`) && !/vm/i.test(e.message)
        ? 'This Oracle has no browser consoles yet (POST /v1/vms/NAME/console-ticket is missing).'
        : `No console: ${e.message}`, 'error');
      reconnect.hidden = false;
      return;
    }
    if (closed) return;
    try {
      session = kind === 'vnc' ? await vnc(screen, wsUrl(t.url), extra, onClose) : await serial(screen, wsUrl(t.url), onClose);
      say('Connected', 'open');
    } catch (e) {
      say(`The console could not open: ${e.message}`, 'error');
      reconnect.hidden = false;
    }
  };
  const onClose = (why) => {
    if (closed) return;
    session = null;
    say(`The console closed${why ? `: ${why}` : ''}. The VM may have stopped.`, 'closed');
    reconnect.hidden = false;
    reconnect.focus();
  };
  reconnect.addEventListener('click', start);
  const close = () => {
    closed = true;
    if (session) session.close();
    session = null;
    container.replaceChildren();
  };
  closeBtn.addEventListener('click', close);
  start();
  return { close };
}

let xtermMods = null;
async function serial(screen, url, onClose) {
  loadCss('/ui/vendor/xterm/xterm.css');
  if (!xtermMods) {
    xtermMods = await Promise.all([
      import('/ui/vendor/xterm/xterm.mjs'), import('/ui/vendor/xterm/addon-attach.mjs'), import('/ui/vendor/xterm/addon-fit.mjs'),
    ]);
  }
  const [{ Terminal }, { AttachAddon }, { FitAddon }] = xtermMods;
  screen.replaceChildren();
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  const ro = new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } });
  ro.observe(screen);
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve, { once: true });
    ws.addEventListener('error', () => reject(new Error('the WebSocket was refused')), { once: true });
  });
  term.loadAddon(new AttachAddon(ws, { bidirectional: true }));
  term.focus();
  // the guest's shell waits for a key: send a newline so that its prompt shows
  ws.send(new TextEncoder().encode('\r'));
  ws.addEventListener('close', e => {
    term.write('\r\n\x1b[7m[console closed]\x1b[0m\r\n');
    onClose(e.reason || (e.code !== 1000 ? `code ${e.code}` : ''));
  });
  window.__vmxTerm = term; // for browser tests: term.buffer.active
  return { close: () => { ro.disconnect(); ws.close(1000); term.dispose(); } };
}

let RFB = null;
async function vnc(screen, url, extra, onClose) {
  if (!RFB) RFB = (await import('/ui/vendor/novnc/core/rfb.js')).default;
  screen.replaceChildren();
  const target = h('div');
  screen.appendChild(target);
  const rfb = new RFB(target, url, { wsProtocols: ['binary'] });
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.focusOnClick = true;
  await new Promise((resolve, reject) => {
    rfb.addEventListener('connect', resolve, { once: true });
    rfb.addEventListener('disconnect', e => reject(new Error(e.detail && e.detail.clean ? 'closed' : 'refused')), { once: true });
  });
  const cad = h('button', { type: 'button', testid: 'vnc-ctrl-alt-del', on: { click: () => rfb.sendCtrlAltDel() } }, 'Send Ctrl-Alt-Del');
  extra.replaceChildren(cad);
  rfb.addEventListener('disconnect', e => { extra.replaceChildren(); onClose(e.detail && e.detail.clean ? '' : 'connection lost'); });
  rfb.focus();
  return { close: () => { try { rfb.disconnect(); } catch { /* gone */ } } };
}
