// Time-series plots (uPlot, served from /ui/vendor) of GET /v1/metrics?series=S&res=R&since=T:
// {series, res, points: [[t, avg, max], ...]}. Decisions (scale-up, scale-down, reclaim,
// server-loss, recovered...) are drawn on them as vertical marks, each with its own glyph and
// dash so that no mark is told by colour alone; the page lists their reasons beside.
import uPlot from '/ui/vendor/uplot/uPlot.esm.js';
import { h, loadCss } from './dom.js';
import { get, enc } from './api.js';

loadCss('/ui/vendor/uplot/uPlot.min.css');

export const MARKS = {
  'scale-up': { glyph: '▲', dash: [], label: 'scale-up' },
  'scale-down': { glyph: '▼', dash: [6, 4], label: 'scale-down' },
  reclaim: { glyph: 'R', dash: [2, 3], label: 'reclaim' },
  'server-loss': { glyph: '✖', dash: [8, 3, 2, 3], label: 'server loss' },
  recovered: { glyph: '✚', dash: [1, 2], label: 'recovered' },
  failed: { glyph: '!', dash: [4, 2], label: 'failed' },
};

export const RANGES = [
  { value: '900:1', label: 'last 15 minutes (1 s)' },
  { value: '21600:60', label: 'last 6 hours (1 min)' },
  { value: '604800:3600', label: 'last 7 days (1 h)' },
];

function css(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function markersPlugin(getMarks) {
  return {
    hooks: {
      draw: u => {
        const marks = getMarks();
        if (!marks.length) return;
        const { ctx } = u;
        const { top, height, left, width } = u.bbox;
        ctx.save();
        ctx.strokeStyle = css('--fg', '#222');
        ctx.fillStyle = css('--fg', '#222');
        ctx.lineWidth = Math.max(1, devicePixelRatio);
        ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
        ctx.textAlign = 'center';
        for (const m of marks) {
          const x = Math.round(u.valToPos(m.t, 'x', true));
          if (x < left || x > left + width) continue;
          const style = MARKS[m.kind] || { glyph: '•', dash: [3, 3] };
          ctx.setLineDash(style.dash.map(d => d * devicePixelRatio));
          ctx.beginPath();
          ctx.moveTo(x, top + 14 * devicePixelRatio);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillText(style.glyph, x, top + 11 * devicePixelRatio);
        }
        ctx.restore();
      },
    },
  };
}

// plot(container, {title, series: [{key, label, scale?}], range: '900:1', marks: () => [...],
// fmt: v => text, testid}) -> {refresh(range?), destroy()}
export function plot(container, opts) {
  const box = h('figure.plot', { testid: opts.testid }, h('h3', opts.title));
  const area = h('div');
  const empty = h('p.plot-empty', { hidden: true }, 'No figures in this period yet.');
  box.append(area, empty);
  container.appendChild(box);
  let u = null;
  let range = opts.range || '900:1';
  let data = null;
  const ro = new ResizeObserver(() => { if (u) u.setSize({ width: Math.max(200, area.clientWidth), height: 200 }); });
  ro.observe(area);

  const build = () => {
    if (u) u.destroy();
    const fmt = opts.fmt || (v => (v === null || v === undefined ? '—' : (Math.round(v * 100) / 100).toString()));
    const fg = css('--fg', '#222'), line = css('--line', '#ccc'), accent = css('--accent', '#1d4f91');
    const dashes = [[], [6, 3], [2, 2], [8, 3, 2, 3]];
    u = new uPlot({
      width: Math.max(200, area.clientWidth || 500), height: 200,
      series: [{}, ...opts.series.map((s, i) => ({
        label: s.label, stroke: i === 0 ? accent : fg, width: 2, dash: dashes[i % dashes.length],
        value: (_, v) => fmt(v), spanGaps: false, points: { show: false },
      }))],
      axes: [
        { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line }, space: 90 },
        { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line }, values: (_, ticks) => ticks.map(fmt), size: 84 },
      ],
      scales: { x: { time: true } },
      cursor: { drag: { x: true, y: false } },
      plugins: [markersPlugin(() => (opts.marks ? opts.marks() : []))],
    }, data, area);
  };

  const refresh = async r => {
    if (r) range = r;
    const [span, res] = range.split(':').map(Number);
    const since = Math.floor(Date.now() / 1000) - span;
    const answers = await Promise.all(opts.series.map(s =>
      get(`/v1/metrics?series=${enc(s.key)}&res=${res}&since=${since}`).catch(() => ({ points: [] }))));
    const ts = new Set();
    for (const a of answers) for (const p of a.points || []) ts.add(p[0]);
    const xs = [...ts].sort((a, b) => a - b);
    const cols = answers.map(a => {
      const m = new Map((a.points || []).map(p => [p[0], p[1]]));
      return xs.map(t => (m.has(t) ? m.get(t) : null));
    });
    data = [xs, ...cols];
    empty.hidden = xs.length > 0;
    area.hidden = xs.length === 0;
    if (!u) build(); else u.setData(data);
    if (xs.length && !area.clientWidth) requestAnimationFrame(() => u && u.setSize({ width: Math.max(200, area.clientWidth), height: 200 }));
  };
  return {
    refresh,
    redraw: () => u && u.redraw(false, false),
    destroy: () => { ro.disconnect(); if (u) u.destroy(); u = null; },
    points: () => (data ? data[0].length : 0),
  };
}
