// Switchyard console: a single page built on the public REST API only
// (/api/v1/...). No framework, no build step. The API token lives in the
// `session` object below, in this tab's memory only: it is never written to
// a cookie, web storage, a database of the browser or the URL.

const MAX_COLUMNS = 5;

const session = { token: null, me: null };
let flash = '';          // one-shot note shown on the next page render
let generation = 0;      // bumps on every navigation; stale async work checks it
let cleanups = [];       // timers and listeners of the current page

// ---------------------------------------------------------------------------
// DOM helpers (no innerHTML with data: every value goes through textContent)

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// add appends children to el, skipping null/false and flattening arrays.
function add(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
// fill replaces el's children (see add).
function fill(el, ...children) {
  el.replaceChildren();
  return add(el, ...children);
}

function svg(paths, label) {
  const ns = 'http://www.w3.org/2000/svg';
  const s = document.createElementNS(ns, 'svg');
  s.setAttribute('viewBox', '0 0 24 24');
  s.setAttribute('fill', 'none');
  s.setAttribute('stroke', 'currentColor');
  s.setAttribute('stroke-width', '2');
  s.setAttribute('stroke-linecap', 'round');
  s.setAttribute('stroke-linejoin', 'round');
  s.setAttribute('aria-hidden', 'true');
  s.setAttribute('focusable', 'false');
  if (label) s.dataset.icon = label;
  for (const d of paths) {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    s.append(p);
  }
  return s;
}
// The "stack" icon of the column picker (three layers).
const stackIcon = () => svg(['M12 3 2 8l10 5 10-5-10-5Z', 'm2 13 10 5 10-5', 'm2 17.5 10 5 10-5'], 'stack');
const arrowIcon = () => svg(['m6 9 6 6 6-6'], 'arrow');

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return h('time', { datetime: s, title: s }, d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }));
}
const envName = (e) => (e || '').replace(/^ENVIRONMENT_/, '').toLowerCase().replace('unspecified', '') || '—';
const badge = (on) => h('span', { class: on ? 'badge on' : 'badge off' }, on ? 'Enabled' : 'Disabled');
const num = (v) => Number(v || 0);

// ---------------------------------------------------------------------------
// REST client

class ApiError extends Error {
  constructor(status, body, text) {
    super((body && body.message) || text || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.reason = body && body.reason;
    this.field = body && body.field;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  const opts = { method, headers, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data, text);
    if (res.status === 401 && session.me) signOut('The API refused the token (revoked or unknown). Sign in again.');
    throw err;
  }
  return data;
}

function errorText(err) {
  if (err instanceof ApiError) {
    const bits = [err.message];
    if (err.reason) bits.push(`(${err.reason})`);
    return bits.join(' ');
  }
  return String(err && err.message || err);
}

// ---------------------------------------------------------------------------
// Session

function signOut(message) {
  session.token = null;
  session.me = null;
  flash = '';
  render(message);
}

function renderSignIn(message) {
  document.getElementById('top').hidden = true;
  const main = document.getElementById('main');
  const err = h('p', { id: 'token-error', class: 'alert', role: 'alert' }, message || '');
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off',
    spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'token-help token-error',
  });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { id: 'signin', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      err.textContent = 'Enter an API token.';
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    button.disabled = true;
    err.textContent = '';
    session.token = token;
    try {
      session.me = await api('GET', '/api/v1/me');
      input.value = '';
      render();
    } catch (ex) {
      session.token = null;
      session.me = null;
      input.setAttribute('aria-invalid', 'true');
      err.textContent = ex instanceof ApiError && ex.status === 401
        ? 'That token was not accepted. Check it and try again.'
        : 'Sign-in failed: ' + errorText(ex);
      button.disabled = false;
      input.focus();
    }
  } },
  h('div', { class: 'field' },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('span', { id: 'token-help', class: 'hint' },
      'The admin token is printed on the first start and saved in .switchyard/bootstrap.json. ',
      'The console keeps it in this tab\'s memory only: reloading or closing the tab signs you out.')),
  err, button);
  fill(main, h('section', { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to Switchyard'), form));
  input.focus();
}

// ---------------------------------------------------------------------------
// Router (URL fragment: #/sources, #/sources/new, #/sources/<id>, ...)

function route() {
  const raw = location.hash.replace(/^#/, '') || '/sources';
  const [p, q] = raw.split('?');
  return { parts: p.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q || '') };
}

function render(message) {
  generation++;
  for (const c of cleanups) c();
  cleanups = [];
  if (!session.token) { renderSignIn(message); return; }
  const top = document.getElementById('top');
  top.hidden = false;
  const me = session.me || {};
  document.getElementById('who').textContent =
    `${(me.user && me.user.email) || ''} · ${roleName(me.token && me.token.role)}`;
  const { parts, query } = route();
  const section = parts[0] === 'destinations' ? 'destinations' : 'sources';
  for (const a of top.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  fill(main, );
  const gen = generation;
  let page;
  if (parts.length <= 1) page = renderList(section, main, gen);
  else if (parts[1] === 'new' && section === 'sources') page = renderNewSource(main, gen);
  else if (parts[1] === 'new') page = renderNewDestination(main, gen, query.get('source') || '');
  else if (section === 'sources') page = renderSource(parts[1], main, gen);
  else page = renderDestination(parts[1], main, gen);
  Promise.resolve(page).catch((ex) => {
    if (gen !== generation) return;
    add(main, h('p', { class: 'alert', role: 'alert' }, errorText(ex)));
  });
}

const roleName = (r) => (r || '').replace(/^ROLE_/, '').toLowerCase() || 'unknown role';
const canEdit = () => ['ROLE_OWNER', 'ROLE_EDITOR'].includes(session.me && session.me.token && session.me.token.role);

function heading(text) {
  document.title = `${text} · Switchyard`;
  const el = h('h1', { tabindex: '-1' }, text);
  queueMicrotask(() => el.focus());
  return el;
}

function flashNote() {
  const el = h('p', { class: 'note', role: 'status' }, flash);
  flash = '';
  return el;
}

// ---------------------------------------------------------------------------
// List pages

const OPS = {
  enum: ['eq', 'in'],
  text: ['eq', 'in', 'contains'],
  count: ['eq', 'gt', 'gte', 'lt', 'lte', 'in', 'contains'],
  date: ['eq', 'gt', 'gte', 'lt', 'lte'],
};
const OP_LABEL = { eq: 'is', in: 'is one of', contains: 'contains', gt: 'more than', gte: 'at least', lt: 'less than', lte: 'at most' };
const DATE_OP_LABEL = { eq: 'on', gt: 'after', gte: 'on or after', lt: 'before', lte: 'on or before' };
const opLabel = (type, op) => (type === 'date' ? DATE_OP_LABEL[op] : OP_LABEL[op]) || op;

const PAGES = {
  sources: {
    title: 'Sources', noun: 'source', nouns: 'sources',
    list: '/api/v1/sources', key: 'sources', newHref: '#/sources/new', newLabel: 'Add source',
    link: (r) => '#/sources/' + encodeURIComponent(r.id),
    columns: {
      name: { label: 'Name', type: 'text' },
      status: { label: 'Status', type: 'enum', values: ['enabled', 'disabled'], cell: (r) => badge(r.enabled) },
      environment: { label: 'Environment', type: 'enum', values: ['dev', 'prod'], cell: (r) => envName(r.environment) },
      destinations: { label: 'Destinations', type: 'count', cell: (r) => {
        const ds = r.destinations || [];
        if (!ds.length) return h('span', { class: 'muted' }, '0');
        return [String(ds.length), ' ', h('span', { class: 'muted' }, '· ' + ds.map((d) => d.name).join(', '))];
      } },
      type: { label: 'Type', type: 'text', cell: (r) => r.type },
      category: { label: 'Category', type: 'text', cell: (r) => r.category || '—' },
      createdAt: { label: 'Created At', type: 'date', cell: (r) => fmtTime(r.createdAt) },
      createdBy: { label: 'Created By', type: 'text', cell: (r) => r.createdByEmail || r.createdBy || '—' },
    },
  },
  destinations: {
    title: 'Destinations', noun: 'destination', nouns: 'destinations',
    list: '/api/v1/destinations', key: 'destinations', newHref: '#/destinations/new', newLabel: 'Add destination',
    link: (r) => '#/destinations/' + encodeURIComponent(r.id),
    columns: {
      name: { label: 'Name', type: 'text' },
      status: { label: 'Status', type: 'enum', values: ['enabled', 'disabled'], cell: (r) => badge(r.enabled) },
      createdAt: { label: 'Created At', type: 'date', cell: (r) => fmtTime(r.createdAt) },
      type: { label: 'Type', type: 'text', cell: (r) => r.type },
      sources: { label: 'Sources', type: 'text', cell: (r) => r.source
        ? h('a', { href: '#/sources/' + encodeURIComponent(r.source.id) }, r.source.name)
        : (r.sourceId || '—') },
      category: { label: 'Category', type: 'text', cell: (r) => r.category || '—' },
    },
  },
};

function parseSort(s) {
  if (!s) return { col: 'createdAt', dir: 'desc' };
  if (s.startsWith('-')) return { col: s.slice(1), dir: 'desc' };
  const [col, dir] = s.split(':');
  return { col, dir: dir === 'desc' ? 'desc' : 'asc' };
}
function parseFilter(f) {
  const i = f.indexOf(':');
  const j = f.indexOf(':', i + 1);
  if (i < 0 || j < 0) return { col: f, op: '', value: '' };
  return { col: f.slice(0, i), op: f.slice(i + 1, j), value: f.slice(j + 1) };
}

async function renderList(pageKey, main, gen) {
  const cfg = PAGES[pageKey];
  const st = { view: null, available: [], cursor: '', offset: 0, count: 25, rows: [], pagination: null, loading: false };
  const live = h('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  const alert = h('p', { class: 'alert', role: 'alert' });
  const chips = h('div', { class: 'chips', 'aria-label': 'Active filters', role: 'group' });
  const countText = h('span', { class: 'count', id: `${pageKey}-count` });
  const pickerBtn = h('button', {
    type: 'button', class: 'icon', id: 'column-picker-button', 'aria-haspopup': 'dialog',
    'aria-expanded': 'false', 'aria-controls': 'column-picker', title: 'Choose columns', 'aria-label': 'Choose columns',
  }, stackIcon());
  const table = h('table', { 'aria-labelledby': `${pageKey}-title`, 'aria-describedby': `${pageKey}-count` });
  const wrap = h('div', { class: 'tablewrap', id: `${pageKey}-table` },
    h('div', { class: 'tablebar' }, countText, pickerBtn), table);
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pagination' });
  add(main, 
    h('div', { class: 'toolbar' },
      heading(cfg.title), h('span', { class: 'spacer' }),
      canEdit() ? h('a', { class: 'button', href: cfg.newHref }, cfg.newLabel) : null),
    flash ? flashNote() : null, alert, chips, wrap, pager, live);
  h1Id(main, `${pageKey}-title`);

  let popover = null; // { el, trigger }
  function closePopover(returnFocus) {
    if (!popover) return;
    popover.el.remove();
    popover.trigger.setAttribute('aria-expanded', 'false');
    if (returnFocus) popover.trigger.focus();
    popover = null;
  }
  function openPopover(el, trigger, container) {
    closePopover(false);
    popover = { el, trigger };
    trigger.setAttribute('aria-expanded', 'true');
    container.append(el);
    const first = el.querySelector('input, select, button');
    if (first) first.focus();
  }
  const onKey = (e) => { if (e.key === 'Escape' && popover) { e.preventDefault(); closePopover(true); } };
  const onClick = (e) => {
    if (popover && !popover.el.contains(e.target) && !popover.trigger.contains(e.target)) closePopover(false);
  };
  document.addEventListener('keydown', onKey);
  document.addEventListener('mousedown', onClick);
  cleanups.push(() => { document.removeEventListener('keydown', onKey); document.removeEventListener('mousedown', onClick); });

  // -- the view (columns, sort, filters), saved per user ------------------
  async function saveView(next, announce) {
    alert.textContent = '';
    try {
      const res = await api('PUT', `/api/v1/me/views/${pageKey}`,
        { columns: next.columns, sort: next.sort, filters: next.filters });
      if (gen !== generation) return false;
      st.view = res.view;
      st.cursor = '';
      st.offset = 0;
      live.textContent = announce ? announce + ' View saved.' : 'View saved.';
      await loadRows();
      return true;
    } catch (ex) {
      if (gen !== generation) return false;
      alert.textContent = 'The view was not saved: ' + errorText(ex);
      return false;
    }
  }

  // -- the column picker -------------------------------------------------
  pickerBtn.addEventListener('click', () => {
    if (popover && popover.trigger === pickerBtn) { closePopover(true); return; }
    const rule = h('p', { class: 'alert', role: 'alert', id: 'column-picker-rule' });
    const counter = h('p', { class: 'hint', id: 'column-picker-count' });
    const boxes = [];
    const updateCounter = () => {
      const n = boxes.filter((b) => b.checked).length;
      counter.textContent = `${n} of ${MAX_COLUMNS} chosen. At most ${MAX_COLUMNS} columns can be shown.`;
    };
    const list = st.available.map((col) => {
      const id = nextId('col');
      const box = h('input', { type: 'checkbox', id, name: 'column', value: col, 'aria-describedby': 'column-picker-count column-picker-rule' });
      box.checked = st.view.columns.includes(col);
      boxes.push(box);
      box.addEventListener('change', async () => {
        rule.textContent = '';
        const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
        if (box.checked && chosen.length > MAX_COLUMNS) {
          box.checked = false;
          rule.textContent = `At most ${MAX_COLUMNS} columns can be shown. Clear one before adding ${colLabel(cfg, col)}.`;
          updateCounter();
          return;
        }
        updateCounter();
        for (const b of boxes) b.disabled = true;
        const ok = await saveView({ ...st.view, columns: chosen },
          `${colLabel(cfg, col)} ${box.checked ? 'shown' : 'hidden'}.`);
        if (!ok) box.checked = !box.checked;
        for (const b of boxes) b.disabled = false;
        updateCounter();
        box.focus();
      });
      return h('div', { class: 'check' }, box, h('label', { for: id }, colLabel(cfg, col)));
    });
    updateCounter();
    const el = h('div', { class: 'popover picker', id: 'column-picker', role: 'dialog', 'aria-label': 'Choose columns' },
      h('fieldset', {}, h('legend', {}, 'Columns'), counter, list), rule,
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'secondary', onclick: () => closePopover(true) }, 'Done')));
    openPopover(el, pickerBtn, wrap);
  });

  // -- the arrow menu of a column: sort and filter -------------------------
  function openColumnMenu(col, trigger, th) {
    if (popover && popover.trigger === trigger) { closePopover(true); return; }
    const def = cfg.columns[col];
    const sort = parseSort(st.view.sort);
    const sortBtn = (dir, text) => h('button', {
      type: 'button', class: 'secondary', 'data-sort': dir,
      'aria-pressed': String(sort.col === col && sort.dir === dir),
      onclick: async () => {
        closePopover(true);
        await saveView({ ...st.view, sort: `${col}:${dir}` }, `Sorted by ${def.label}, ${dir === 'asc' ? 'ascending' : 'descending'}.`);
        focusArrow(col);
      },
    }, text);
    const opId = nextId('op');
    const valId = nextId('val');
    const errId = nextId('ferr');
    const op = h('select', { id: opId, name: 'op' }, OPS[def.type].map((o) => h('option', { value: o }, opLabel(def.type, o))));
    const valueBox = h('div', { class: 'field' });
    const ferr = h('p', { class: 'alert', role: 'alert', id: errId });
    let valueInput;
    const drawValue = () => {
      const o = op.value;
      if (def.type === 'enum') {
        valueInput = h('select', { id: valId, name: 'value', multiple: o === 'in' ? true : null, 'aria-describedby': errId },
          def.values.map((v) => h('option', { value: v }, v)));
      } else if (def.type === 'date') {
        valueInput = h('input', { id: valId, name: 'value', type: 'date', required: true, 'aria-describedby': errId });
      } else {
        valueInput = h('input', {
          id: valId, name: 'value', type: 'text', required: true, 'aria-describedby': errId,
          inputmode: def.type === 'count' && o !== 'contains' ? 'numeric' : null,
          placeholder: o === 'in' ? 'comma,separated' : null,
        });
      }
      fill(valueBox, h('label', { for: valId }, 'Value'), valueInput);
    };
    op.addEventListener('change', drawValue);
    drawValue();
    const existing = st.view.filters.map(parseFilter).filter((f) => f.col === col);
    const form = h('form', { onsubmit: async (e) => {
      e.preventDefault();
      let value;
      if (valueInput.multiple) value = [...valueInput.selectedOptions].map((o) => o.value).join(',');
      else value = valueInput.value.trim();
      if (!value) {
        ferr.textContent = 'Enter a value to filter on.';
        valueInput.setAttribute('aria-invalid', 'true');
        valueInput.focus();
        return;
      }
      const f = `${col}:${op.value}:${value}`;
      const filters = st.view.filters.filter((x) => { const p = parseFilter(x); return !(p.col === col && p.op === op.value); });
      filters.push(f);
      closePopover(true);
      await saveView({ ...st.view, filters }, `Filter added: ${def.label} ${opLabel(def.type, op.value)} ${value}.`);
      focusArrow(col);
    } },
    h('fieldset', {}, h('legend', {}, `Filter ${def.label}`),
      h('div', { class: 'field' }, h('label', { for: opId }, 'Condition'), op),
      valueBox, ferr,
      h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Apply filter'))));
    const el = h('div', { class: 'popover', role: 'dialog', 'aria-label': `${def.label}: sort and filter`, id: 'column-menu' },
      h('div', { class: 'row', role: 'group', 'aria-label': `Sort by ${def.label}` },
        sortBtn('asc', 'Sort ascending'), sortBtn('desc', 'Sort descending')),
      form,
      existing.length ? h('p', { class: 'hint' }, 'Active: ', existing.map((f) => `${opLabel(def.type, f.op)} ${f.value}`).join('; ')) : null);
    el.style.left = '0';
    el.style.top = '100%';
    openPopover(el, trigger, th);
  }

  // The header is redrawn after every change: give focus back to the arrow.
  const focusArrow = (col) => { const b = table.querySelector(`th[data-col="${CSS.escape(col)}"] button.arrow`); if (b) b.focus(); };

  // -- drawing -------------------------------------------------------------
  function drawChips() {
    const fs = st.view.filters;
    fill(chips, );
    if (!fs.length) { chips.append(h('span', { class: 'hint' }, 'No filters. Use the arrow next to a column header to sort or filter.')); return; }
    for (const f of fs) {
      const p = parseFilter(f);
      const def = cfg.columns[p.col] || { label: p.col, type: 'text' };
      const text = `${def.label} ${opLabel(def.type, p.op)} ${p.value}`;
      chips.append(h('span', { class: 'chip', 'data-filter': f }, text,
        h('button', { type: 'button', 'aria-label': `Remove filter: ${text}`, title: 'Remove filter', onclick: async () => {
          await saveView({ ...st.view, filters: st.view.filters.filter((x) => x !== f) }, `Filter removed: ${text}.`);
          const next = chips.querySelector('button');
          (next || pickerBtn).focus();
        } }, '×')));
    }
    if (fs.length > 1) {
      chips.append(h('button', { type: 'button', class: 'linklike', onclick: () => saveView({ ...st.view, filters: [] }, 'All filters removed.') }, 'Clear all filters'));
    }
  }

  function drawTable() {
    const cols = ['name', ...st.view.columns];
    const sort = parseSort(st.view.sort);
    const head = h('tr', {}, cols.map((col) => {
      const def = cfg.columns[col] || { label: col, type: 'text' };
      const th = h('th', { scope: 'col', 'data-col': col });
      if (sort.col === col) th.setAttribute('aria-sort', sort.dir === 'asc' ? 'ascending' : 'descending');
      const arrow = h('button', {
        type: 'button', class: 'arrow', 'aria-haspopup': 'dialog', 'aria-expanded': 'false',
        'aria-label': `Sort and filter by ${def.label}`, title: `Sort and filter by ${def.label}`,
      }, arrowIcon());
      arrow.addEventListener('click', () => openColumnMenu(col, arrow, th));
      const mark = sort.col === col ? h('span', { 'aria-hidden': 'true', class: 'muted' }, sort.dir === 'asc' ? ' ↑' : ' ↓') : null;
      add(th, h('span', { class: 'label' }, def.label), mark, ' ', arrow);
      return th;
    }));
    const rows = st.rows.map((r) => h('tr', { 'data-id': r.id }, cols.map((col) => {
      if (col === 'name') return h('td', { 'data-col': 'name' }, h('a', { href: cfg.link(r) }, r.name));
      const def = cfg.columns[col];
      return h('td', { 'data-col': col }, def && def.cell ? def.cell(r) : '');
    })));
    if (!rows.length) {
      const msg = st.view.filters.length ? `No ${cfg.nouns} match these filters.` : `No ${cfg.nouns} yet.`;
      rows.push(h('tr', {}, h('td', { class: 'empty', colspan: cols.length }, msg)));
    }
    fill(table, h('thead', {}, head), h('tbody', {}, rows));
  }

  function drawPager() {
    const p = st.pagination || {};
    const total = num(p.totalEntries);
    const first = st.rows.length ? st.offset + 1 : 0;
    const last = st.offset + st.rows.length;
    countText.textContent = `${total} ${total === 1 ? cfg.noun : cfg.nouns}`;
    const sizeId = nextId('size');
    const size = h('select', { id: sizeId }, [10, 25, 50, 100].map((n) => h('option', { value: n, selected: n === st.count ? true : null }, n)));
    size.addEventListener('change', async () => { st.count = Number(size.value); st.cursor = ''; st.offset = 0; await loadRows(); document.getElementById(sizeId)?.focus(); });
    const prev = h('button', { type: 'button', class: 'secondary', id: 'page-prev', disabled: p.previous ? null : true }, 'Previous page');
    const next = h('button', { type: 'button', class: 'secondary', id: 'page-next', disabled: p.next ? null : true }, 'Next page');
    prev.addEventListener('click', async () => { st.cursor = p.previous; st.offset = Math.max(0, st.offset - st.count); await loadRows(); focusPager('page-prev'); });
    next.addEventListener('click', async () => { st.cursor = p.next; st.offset += st.rows.length; await loadRows(); focusPager('page-next'); });
    fill(pager, 
      h('label', { for: sizeId }, 'Rows per page '), size,
      h('span', { id: 'page-range', 'aria-live': 'polite' }, `${first}–${last} of ${total}`),
      prev, next);
  }
  const focusPager = (id) => { const b = document.getElementById(id); if (b && !b.disabled) b.focus(); else pager.querySelector('button:not([disabled])')?.focus(); };

  async function loadRows() {
    const q = new URLSearchParams();
    q.set('sort', st.view.sort || 'createdAt:desc');
    for (const f of st.view.filters) q.append('filter', f);
    q.set('pagination.count', String(st.count));
    if (st.cursor) q.set('pagination.cursor', st.cursor);
    wrap.setAttribute('aria-busy', 'true');
    try {
      const res = await api('GET', `${cfg.list}?${q}`);
      if (gen !== generation) return;
      st.rows = res[cfg.key] || [];
      st.pagination = res.pagination || {};
      alert.textContent = '';
    } catch (ex) {
      if (gen !== generation) return;
      st.rows = [];
      st.pagination = {};
      alert.textContent = 'Could not load the list: ' + errorText(ex);
    } finally {
      wrap.removeAttribute('aria-busy');
    }
    drawChips();
    drawTable();
    drawPager();
    wrap.dataset.loaded = String(Date.now());
  }

  const v = await api('GET', `/api/v1/me/views/${pageKey}`);
  if (gen !== generation) return;
  st.view = { columns: v.view.columns || [], sort: v.view.sort || 'createdAt:desc', filters: v.view.filters || [] };
  st.available = v.availableColumns || [];
  await loadRows();
}

function colLabel(cfg, col) { return (cfg.columns[col] && cfg.columns[col].label) || col; }
function h1Id(main, id) { const el = main.querySelector('h1'); if (el) el.id = id; }

// ---------------------------------------------------------------------------
// Source detail

async function renderSource(id, main, gen) {
  const [{ source: s }, whs] = await Promise.all([
    api('GET', `/api/v1/sources/${encodeURIComponent(id)}`),
    api('GET', '/api/v1/warehouses?pagination.count=200').catch(() => ({ warehouses: [] })),
  ]);
  if (gen !== generation) return;
  const alert = h('p', { class: 'alert', role: 'alert' });
  const note = flash ? flashNote() : h('p', { class: 'note', role: 'status' });
  const rerender = (msg) => { flash = msg; render(); };
  const toggle = h('button', { type: 'button', class: s.enabled ? 'danger' : '', id: 'source-toggle', onclick: async () => {
    toggle.disabled = true;
    try {
      await api('PATCH', `/api/v1/sources/${encodeURIComponent(id)}`, { enabled: !s.enabled });
      rerender(s.enabled ? 'Source disabled: its write keys are refused until it is enabled again.' : 'Source enabled.');
    } catch (ex) { alert.textContent = errorText(ex); toggle.disabled = false; }
  } }, s.enabled ? 'Disable source' : 'Enable source');

  // settings form: name, environment, lifecycle exception
  const nameIn = h('input', { id: 'src-name', name: 'name', value: s.name, required: true });
  const envIn = h('select', { id: 'src-env', name: 'environment' },
    ['ENVIRONMENT_DEV', 'ENVIRONMENT_PROD'].map((e) => h('option', { value: e, selected: s.environment === e ? true : null }, envName(e))));
  const exIn = h('input', { type: 'checkbox', id: 'src-exempt', name: 'lifecycleExempt' });
  exIn.checked = !!s.lifecycleExempt;
  const settingsForm = h('form', { id: 'source-settings', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('PATCH', `/api/v1/sources/${encodeURIComponent(id)}`, {
        revision: s.revision, name: nameIn.value.trim(), environment: envIn.value, lifecycleExempt: exIn.checked,
      });
      rerender('Settings saved.');
    } catch (ex) {
      alert.textContent = ex.reason === 'CATALOG_REVISION_MISMATCH'
        ? 'Someone changed this source meanwhile; reload the page and apply your change again.' : errorText(ex);
      markField(settingsForm, ex.field);
    }
  } },
  h('div', { class: 'field' }, h('label', { for: 'src-name' }, 'Name'), nameIn),
  h('div', { class: 'field' }, h('label', { for: 'src-env' }, 'Environment'), envIn),
  h('div', { class: 'check field' }, exIn, h('label', { for: 'src-exempt' }, 'Exempt from auto-disable (14 days without an enabled destination)')),
  canEdit() ? h('button', { type: 'submit' }, 'Save settings') : null);
  if (!canEdit()) for (const el of settingsForm.elements) el.disabled = true;

  const keys = s.writeKeys || [];
  const keyList = h('ul', { class: 'keys', id: 'write-keys' }, keys.map((k) => h('li', {},
    h('code', {}, k),
    canEdit() ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Revoke write key ${k.slice(0, 6)}…`, onclick: async () => {
      if (!window.confirm('Revoke this write key? Events sent with it are refused within a second.')) return;
      try { await api('DELETE', `/api/v1/sources/${encodeURIComponent(id)}/write-keys/${encodeURIComponent(k)}`); rerender('Write key revoked.'); }
      catch (ex) { alert.textContent = errorText(ex); }
    } }, 'Revoke') : null)));
  const dests = s.destinations || [];
  const connected = (whs.warehouses || []).filter((w) => (w.sourceIds || []).includes(id) || (s.warehouseIds || []).includes(w.id));

  add(main, 
    h('div', { class: 'toolbar' }, heading(s.name), badge(s.enabled), toggle,
      canEdit() ? h('a', { class: 'button secondary', href: `#/destinations/new?source=${encodeURIComponent(id)}` }, 'Connect destination') : null),
    h('p', {}, h('a', { href: '#/sources' }, '← All sources')),
    note, alert,
    h('div', { class: 'cols' },
      h('section', { 'aria-labelledby': 'sec-overview' }, h('h2', { id: 'sec-overview' }, 'Overview'),
        h('dl', { class: 'props' },
          h('dt', {}, 'ID'), h('dd', {}, h('code', {}, s.id)),
          h('dt', {}, 'Slug'), h('dd', {}, s.slug),
          h('dt', {}, 'Type'), h('dd', {}, s.type),
          h('dt', {}, 'Category'), h('dd', {}, s.category || '—'),
          h('dt', {}, 'Environment'), h('dd', {}, envName(s.environment)),
          h('dt', {}, 'Created'), h('dd', {}, fmtTime(s.createdAt), ' by ', s.createdByEmail || s.createdBy || '—'),
          h('dt', {}, 'Labels'), h('dd', {}, Object.entries(s.labels || {}).map(([k, v]) => `${k}:${v}`).join(', ') || '—'),
          s.disabledBy ? [h('dt', {}, 'Disabled by'), h('dd', {}, s.disabledBy === 'system' ? 'Switchyard (no enabled destination for 14 days)' : s.disabledBy)] : null,
          s.inactiveSince ? [h('dt', {}, 'Without enabled destination since'), h('dd', {}, fmtTime(s.inactiveSince))] : null)),
      h('section', { 'aria-labelledby': 'sec-settings' }, h('h2', { id: 'sec-settings' }, 'Settings'), settingsForm)),
    h('section', { 'aria-labelledby': 'sec-keys' }, h('h2', { id: 'sec-keys' }, 'Write keys'),
      keys.length ? keyList : h('p', { class: 'muted' }, canEdit() ? 'No write key: create one to send events.' : 'Write keys are shown to owners and editors only.'),
      canEdit() ? h('button', { type: 'button', class: 'secondary', id: 'new-write-key', onclick: async () => {
        try { const r = await api('POST', `/api/v1/sources/${encodeURIComponent(id)}/write-keys`, {}); rerender(`Write key created: ${r.writeKey}`); }
        catch (ex) { alert.textContent = errorText(ex); }
      } }, 'Create write key') : null,
      h('p', { class: 'hint' }, 'Send events with the write key as the Basic-auth username, e.g. ',
        h('code', {}, `curl -u "${keys[0] || 'WRITE_KEY'}:" ${location.origin}/v1/track -d '{"userId":"u-1","event":"Hello"}'`))),
    h('section', { 'aria-labelledby': 'sec-dests' }, h('h2', { id: 'sec-dests' }, 'Connected destinations'),
      dests.length ? h('table', { id: 'source-destinations', 'aria-labelledby': 'sec-dests' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Status'))),
        h('tbody', {}, dests.map((d) => h('tr', {},
          h('td', {}, h('a', { href: '#/destinations/' + encodeURIComponent(d.id) }, d.name)), h('td', {}, d.type), h('td', {}, badge(d.enabled))))))
        : h('p', { class: 'muted' }, 'No destination is connected.')),
    h('section', { 'aria-labelledby': 'sec-wh' }, h('h2', { id: 'sec-wh' }, 'Connected warehouses'),
      connected.length ? h('ul', { id: 'source-warehouses' }, connected.map((w) => h('li', {}, w.name, ' ', h('span', { class: 'muted' }, `(${(w.type || '').replace(/^WAREHOUSE_TYPE_/, '').toLowerCase()})`), ' ', badge(w.enabled))))
        : h('p', { class: 'muted' }, 'No warehouse is connected.')),
    liveDebugger(id, gen));
}

// liveDebugger shows the latest events arriving for a source, accepted or
// rejected with the reason, polling GET /api/v1/sources/{id}/events with
// the last seq seen (no reload; newest on top; at most 100 rows kept).
function liveDebugger(sourceId, gen) {
  const status = h('p', { class: 'muted', id: 'debugger-status', role: 'status' }, 'Waiting for events…');
  const body = h('tbody', {});
  const table = h('table', { id: 'event-debugger', 'aria-labelledby': 'sec-debugger', hidden: true },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Received'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Type'),
      h('th', { scope: 'col' }, 'Event'), h('th', { scope: 'col' }, 'Message ID'), h('th', { scope: 'col' }, 'Reason'))),
    body);
  const detail = h('pre', { class: 'payload', id: 'debugger-payload', hidden: true, tabindex: '0', 'aria-label': 'Selected event payload' });
  let after = 0;
  let busy = false;
  async function poll() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const r = await api('GET', `/api/v1/sources/${encodeURIComponent(sourceId)}/events?after=${after}&limit=100`);
      if (gen !== generation) return;
      const evs = r.events || [];
      for (const e of evs) {
        after = Math.max(after, Number(e.seq));
        const rejected = e.status === 'rejected';
        const label = { accepted: 'Accepted', rejected: 'Rejected', duplicate: 'Duplicate' }[e.status] || e.status;
        const row = h('tr', { 'data-status': e.status, 'data-message-id': e.messageId || '', tabindex: '0',
          onclick: () => { detail.hidden = false; detail.textContent = e.payload || '(no payload kept)'; },
          onkeydown: (k) => { if (k.key === 'Enter') { detail.hidden = false; detail.textContent = e.payload || '(no payload kept)'; } } },
          h('td', {}, fmtTime(e.receivedAt)),
          h('td', {}, h('span', { class: 'badge ' + (rejected ? 'off' : e.status === 'duplicate' ? 'dup' : 'on') }, label)),
          h('td', {}, e.type || '—'), h('td', {}, e.event || '—'),
          h('td', {}, e.messageId ? h('code', {}, e.messageId) : '—'),
          h('td', {}, rejected ? `${e.code}: ${e.reason}` : (e.reason || '')));
        body.insertBefore(row, body.firstChild);
      }
      while (body.children.length > 100) body.removeChild(body.lastChild);
      if (body.children.length) {
        table.hidden = false;
        status.textContent = `Live: ${body.children.length} latest event${body.children.length === 1 ? '' : 's'} (newest first; select one to see its payload).`;
      }
    } catch (ex) {
      if (gen === generation) status.textContent = 'Live debugger: ' + errorText(ex);
    } finally { busy = false; }
  }
  poll();
  const timer = setInterval(poll, 1000);
  cleanups.push(() => clearInterval(timer));
  return h('section', { 'aria-labelledby': 'sec-debugger' }, h('h2', { id: 'sec-debugger' }, 'Live event debugger'), status, table, detail);
}

function markField(form, field) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  if (!field) return;
  const el = form.querySelector(`[data-field="${CSS.escape(field)}"]`) || form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (el) { el.setAttribute('aria-invalid', 'true'); el.focus(); }
}

// ---------------------------------------------------------------------------
// Destination detail

async function renderDestination(id, main, gen) {
  const base = `/api/v1/destinations/${encodeURIComponent(id)}`;
  const { destination: d } = await api('GET', base);
  if (gen !== generation) return;
  const alert = h('p', { class: 'alert', role: 'alert' });
  const note = flash ? flashNote() : h('p', { class: 'note', role: 'status' });
  const rerender = (msg) => { flash = msg; render(); };
  const toggle = h('button', { type: 'button', class: d.enabled ? 'danger' : '', id: 'destination-toggle', onclick: async () => {
    toggle.disabled = true;
    try { await api('PATCH', base, { enabled: !d.enabled }); rerender(d.enabled ? 'Destination disabled.' : 'Destination enabled.'); }
    catch (ex) { alert.textContent = errorText(ex); toggle.disabled = false; }
  } }, d.enabled ? 'Disable destination' : 'Enable destination');

  const settings = Object.entries(d.settings || {}).sort(([a], [b]) => a.localeCompare(b));
  const metricsBox = h('div', { id: 'delivery-metrics' });
  const liveBox = h('div', { id: 'delivery-live' });
  const errorsBox = h('div', { id: 'delivery-errors' });
  const dlqBox = h('div', { id: 'dead-letters' });
  const filtersBox = h('div', { id: 'destination-filters' });

  add(main, 
    h('div', { class: 'toolbar' }, heading(d.name), badge(d.enabled), canEdit() ? toggle : null),
    h('p', {}, h('a', { href: '#/destinations' }, '← All destinations'), ' · source ',
      d.source ? h('a', { href: '#/sources/' + encodeURIComponent(d.source.id) }, d.source.name) : d.sourceId),
    note, alert,
    h('div', { class: 'cols' },
      h('section', { 'aria-labelledby': 'sec-dset' }, h('h2', { id: 'sec-dset' }, 'Settings'),
        h('dl', { class: 'props', id: 'destination-settings' },
          h('dt', {}, 'ID'), h('dd', {}, h('code', {}, d.id)),
          h('dt', {}, 'Type'), h('dd', {}, d.type, d.category ? h('span', { class: 'muted' }, ` · ${d.category}`) : null),
          h('dt', {}, 'Created'), h('dd', {}, fmtTime(d.createdAt), ' by ', d.createdByEmail || d.createdBy || '—'),
          settings.map(([k, v]) => [h('dt', {}, k), h('dd', { 'data-setting': k }, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))])),
        h('p', { class: 'hint' }, 'Secret settings are shown masked (••••••); the API never returns them.')),
      h('section', { 'aria-labelledby': 'sec-filters' }, h('h2', { id: 'sec-filters' }, 'Filters'), filtersBox)),
    h('section', { 'aria-labelledby': 'sec-metrics' }, h('h2', { id: 'sec-metrics' }, 'Delivery'), metricsBox, liveBox),
    h('section', { 'aria-labelledby': 'sec-errors' },
      h('div', { class: 'toolbar' }, h('h2', { id: 'sec-errors' }, 'Latest errors'),
        h('button', { type: 'button', class: 'secondary', onclick: () => Promise.all([loadErrors(), loadMetrics()]) }, 'Refresh errors')),
      errorsBox),
    h('section', { 'aria-labelledby': 'sec-dlq' },
      h('div', { class: 'toolbar' }, h('h2', { id: 'sec-dlq' }, 'Dead letters'),
        h('button', { type: 'button', class: 'secondary', onclick: () => Promise.all([loadDLQ(), loadMetrics()]) }, 'Refresh dead letters')),
      dlqBox));

  const guard = (fn) => async (...a) => { try { await fn(...a); } catch (ex) { if (gen === generation) alert.textContent = errorText(ex); } };

  const loadFilters = guard(async () => {
    const r = await api('GET', `${base}/filters`);
    if (gen !== generation) return;
    const fs = r.filters || [];
    fill(filtersBox, fs.length
      ? h('table', { 'aria-labelledby': 'sec-filters' },
        h('thead', {}, h('tr', {}, ['Title', 'If', 'Actions', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, fs.map((f) => h('tr', {}, h('td', {}, f.title || f.id), h('td', {}, h('code', {}, f.if)),
          h('td', {}, (f.actions || []).map((a) => a.type + (a.type === 'sample' ? ` ${Math.round(a.percent * 100)}%` : '')).join(', ')),
          h('td', {}, badge(f.enabled))))))
      : h('p', { class: 'muted' }, 'No filters: every event of the source is sent.'));
  });

  const liveSeries = [];
  const loadMetrics = guard(async () => {
    const [m, s] = await Promise.all([api('GET', `${base}/delivery-metrics`), api('GET', `${base}/delivery`)]);
    if (gen !== generation) return;
    fill(metricsBox, minutesChart(m.minutes || []), metricsChart(m.windows || []), metricsTable(m.windows || []));
    liveSeries.push({ t: Date.now(), delivered: num(s.delivered), failed: num(s.failedAttempts), pending: num(s.pending) });
    if (liveSeries.length > 60) liveSeries.shift();
    fill(liveBox, 
      h('p', {}, s.running ? 'Worker running. ' : 'Worker not running. ', s.error ? h('span', { class: 'alert' }, s.error) : null,
        `Since start: ${num(s.delivered)} delivered, ${num(s.failedAttempts)} failed attempts, ${num(s.pending)} pending.`),
      liveChart(liveSeries));
  });

  const loadErrors = guard(async () => {
    const r = await api('GET', `${base}/delivery-errors`);
    if (gen !== generation) return;
    const es = r.errors || [];
    fill(errorsBox, es.length ? es.map((e) => h('details', {},
      h('summary', {}, fmtTime(e.time), ` · ${e.reason} · status ${e.status || 'none'} · attempt ${e.attempt}${e.final ? ' · dead-lettered' : ''} · `, h('code', {}, e.messageId)),
      h('h3', { class: 'hint' }, 'Request'), h('pre', {}, e.request || '—'),
      h('h3', { class: 'hint' }, 'Response'), h('pre', {}, e.response || '—'),
      h('h3', { class: 'hint' }, 'Event'), h('pre', {}, e.event || '—')))
      : h('p', { class: 'muted' }, 'No failed attempt recorded.'));
  });

  const redrive = guard(async (filter, label) => {
    const r = await api('POST', `${base}/dead-letters:redrive`, { filter });
    flash = `${label}: ${r.redriven || 0} re-sent.`;
    render();
  });
  const loadDLQ = guard(async () => {
    const r = await api('GET', `${base}/dead-letters?page_size=50`);
    if (gen !== generation) return;
    const ls = r.deadLetters || [];
    fill(dlqBox, ls.length ? [
      canEdit() ? h('p', {}, h('button', { type: 'button', id: 'redrive-all', onclick: () => redrive({}, 'Redrive') }, 'Redrive all')) : null,
      h('table', { 'aria-labelledby': 'sec-dlq' },
        h('thead', {}, h('tr', {}, ['Failed', 'Message ID', 'Type', 'Reason', 'Status', 'Attempts', 'Last error', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ls.map((l) => h('tr', {},
          h('td', {}, fmtTime(l.failedAt)), h('td', {}, h('code', {}, l.messageId)), h('td', {}, l.eventType), h('td', {}, l.reason),
          h('td', {}, String(l.status || '—')), h('td', {}, String(l.attempts)), h('td', {}, l.error || '—'),
          h('td', {}, canEdit() ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Redrive ${l.messageId}`,
            onclick: () => redrive({ messageIds: [l.messageId] }, `Redrive of ${l.messageId}`) }, 'Redrive') : null))))),
    ] : h('p', { class: 'muted' }, 'No dead letters.'));
  });

  await Promise.all([loadFilters(), loadMetrics(), loadErrors(), loadDLQ()]);
  const timer = setInterval(() => { if (!document.hidden) loadMetrics(); }, 5000);
  cleanups.push(() => clearInterval(timer));
}

const SERIES = [
  ['delivered', 'Delivered', '#17733a'],
  ['notDelivered', 'Not delivered', '#a2231d'],
  ['retried', 'Retried', '#c68a00'],
  ['filtered', 'Filtered', '#6b7280'],
];

function svgEl(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// metricsChart draws grouped bars per window (10m, 1h, 24h, 7d).
function metricsChart(windows) {
  const W = 640, H = 200, pad = 28, groupW = (W - pad * 2) / Math.max(windows.length, 1);
  const max = Math.max(1, ...windows.flatMap((w) => SERIES.map(([k]) => num(w[k]))));
  const g = svgEl('svg', { viewBox: `0 0 ${W} ${H + 24}`, class: 'chart', role: 'img', width: W,
    'aria-label': 'Delivery counts per period: ' + windows.map((w) => `${w.window}: ${SERIES.map(([k, l]) => `${num(w[k])} ${l.toLowerCase()}`).join(', ')}`).join('; ') });
  g.append(svgEl('line', { x1: pad, x2: W - pad, y1: H, y2: H, stroke: '#d9dde5' }));
  if (max === 1 && windows.every((w) => SERIES.every(([k]) => num(w[k]) === 0))) {
    g.append(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'font-size': 14, fill: '#5b6475' }, 'No events for this destination in the last 7 days'));
  }
  windows.forEach((w, i) => {
    const bw = (groupW - 16) / SERIES.length;
    SERIES.forEach(([k, label, color], j) => {
      const v = num(w[k]);
      const bh = Math.round((v / max) * (H - 30));
      const x = pad + i * groupW + 8 + j * bw;
      g.append(svgEl('rect', { x, y: H - bh, width: bw - 2, height: Math.max(bh, v ? 1 : 0), fill: color }, svgEl('title', {}, `${w.window} ${label}: ${v}`)));
      if (v) g.append(svgEl('text', { x: x + bw / 2 - 1, y: H - bh - 4, 'text-anchor': 'middle', 'font-size': 11, fill: '#1d2330' }, v));
    });
    g.append(svgEl('text', { x: pad + i * groupW + groupW / 2, y: H + 18, 'text-anchor': 'middle', 'font-size': 13, fill: '#5b6475' }, `last ${w.window}`));
  });
  return h('figure', { class: 'figure' }, g,
    h('figcaption', { class: 'legend' }, SERIES.map(([, l, c]) => { const s = h('span', {}, l); s.style.setProperty('--c', c); return s; })));
}

function metricsTable(windows) {
  return h('table', { class: 'metrics' },
    h('caption', { class: 'visually-hidden' }, 'Delivery metrics per period'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Period'), SERIES.map(([, l]) => h('th', { scope: 'col' }, l)),
      h('th', { scope: 'col' }, 'p95 latency'), h('th', { scope: 'col' }, 'Not delivered by reason'))),
    h('tbody', {}, windows.map((w) => h('tr', {}, h('th', { scope: 'row' }, w.window), SERIES.map(([k]) => h('td', {}, String(num(w[k])))),
      h('td', {}, `${Math.round(num(w.p95LatencyMs))} ms`),
      h('td', {}, (w.notDeliveredByReason || []).map((r) => `${r.reason}: ${num(r.count)}`).join(', ') || '—')))));
}

// liveChart plots the delivered total polled every 5 s while the page is open.
// minutesChart draws the last hour, one column per minute: delivered
// (green) stacked with dead-lettered (red), and retried attempts as a line.
function minutesChart(points) {
  const W = 640, H = 120, pad = 6;
  const n = points.length;
  const vals = points.map((p) => ({ d: num(p.delivered), x: num(p.notDelivered), r: num(p.retried), t: p.start }));
  const max = Math.max(1, ...vals.map((v) => v.d + v.x), ...vals.map((v) => v.r));
  const total = vals.reduce((a, v) => ({ d: a.d + v.d, x: a.x + v.x, r: a.r + v.r }), { d: 0, x: 0, r: 0 });
  const g = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', width: W, id: 'delivery-minutes-chart',
    'aria-label': `Last hour by minute: ${total.d} delivered, ${total.x} dead-lettered, ${total.r} retried attempts` });
  const bw = n ? (W - 2 * pad) / n : 0;
  vals.forEach((v, i) => {
    const x = pad + i * bw;
    const hd = (v.d / max) * (H - 2 * pad), hx = (v.x / max) * (H - 2 * pad);
    if (v.d) g.append(svgEl('rect', { x, y: H - pad - hd, width: Math.max(1, bw - 1), height: hd, fill: '#17733a' }, svgEl('title', {}, `${fmtTime(v.t)}: ${v.d} delivered`)));
    if (v.x) g.append(svgEl('rect', { x, y: H - pad - hd - hx, width: Math.max(1, bw - 1), height: hx, fill: '#b42318' }, svgEl('title', {}, `${fmtTime(v.t)}: ${v.x} dead-lettered`)));
  });
  if (n > 1) {
    const pts = vals.map((v, i) => `${pad + i * bw + bw / 2},${H - pad - (v.r / max) * (H - 2 * pad)}`);
    g.append(svgEl('polyline', { points: pts.join(' '), fill: 'none', stroke: '#b54708', 'stroke-width': 1.5, 'stroke-dasharray': '4 2' }));
  }
  g.append(svgEl('line', { x1: pad, x2: W - pad, y1: H - pad, y2: H - pad, stroke: '#d9dde5' }));
  return h('figure', {}, g, h('figcaption', { class: 'hint' },
    `Last 60 minutes, per minute: delivered (green), dead-lettered (red), retried attempts (dashed). Totals: ${total.d} delivered, ${total.x} dead-lettered, ${total.r} retried.`));
}

function liveChart(series) {
  const W = 640, H = 90, pad = 6;
  const g = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', width: W,
    'aria-label': `Events delivered while this page is open: ${series.length ? series[series.length - 1].delivered - series[0].delivered : 0}` });
  if (series.length > 1) {
    const d0 = series[0].delivered;
    const max = Math.max(1, ...series.map((p) => p.delivered - d0));
    const pts = series.map((p, i) => `${pad + (i / (series.length - 1)) * (W - 2 * pad)},${H - pad - ((p.delivered - d0) / max) * (H - 2 * pad)}`);
    g.append(svgEl('polyline', { points: pts.join(' '), fill: 'none', stroke: '#17733a', 'stroke-width': 2 }));
  }
  g.append(svgEl('line', { x1: pad, x2: W - pad, y1: H - pad, y2: H - pad, stroke: '#d9dde5' }));
  return h('figure', {}, g, h('figcaption', { class: 'hint' }, 'Delivered since this page opened (updates every 5 s).'));
}

// ---------------------------------------------------------------------------
// Create a source

async function renderNewSource(main, gen) {
  const cat = await api('GET', '/api/v1/catalog/sources');
  if (gen !== generation) return;
  const alert = h('p', { class: 'alert', role: 'alert' });
  const name = h('input', { id: 'new-src-name', name: 'name', required: true, 'data-field': 'name', autocomplete: 'off' });
  const type = h('select', { id: 'new-src-type', name: 'type', 'data-field': 'type' },
    (cat.sources || []).map((s) => h('option', { value: s.slug }, `${s.name} (${(s.categories || []).join(', ')})`)));
  const env = h('select', { id: 'new-src-env', name: 'environment', 'data-field': 'environment' },
    h('option', { value: 'ENVIRONMENT_DEV' }, 'dev'), h('option', { value: 'ENVIRONMENT_PROD' }, 'prod'));
  const form = h('form', { id: 'new-source', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    if (!name.value.trim()) { alert.textContent = 'Enter a name.'; markField(form, 'name'); return; }
    try {
      const r = await api('POST', '/api/v1/sources', { name: name.value.trim(), type: type.value, environment: env.value });
      flash = `Source created. Write key: ${(r.source.writeKeys || [])[0] || '(hidden)'}`;
      location.hash = '#/sources/' + encodeURIComponent(r.source.id);
    } catch (ex) { alert.textContent = errorText(ex); markField(form, ex.field); }
  } },
  h('div', { class: 'field' }, h('label', { for: 'new-src-name' }, 'Name'), name),
  h('div', { class: 'field' }, h('label', { for: 'new-src-type' }, 'Type'), type,
    h('span', { class: 'hint' }, 'The type cannot be changed after creation.')),
  h('div', { class: 'field' }, h('label', { for: 'new-src-env' }, 'Environment'), env),
  alert, h('button', { type: 'submit' }, 'Create source'));
  add(main, heading('Add source'), h('p', {}, h('a', { href: '#/sources' }, '← All sources')), form);
}

// ---------------------------------------------------------------------------
// Connect a destination

async function renderNewDestination(main, gen, sourceId) {
  const [cat, srcs] = await Promise.all([
    api('GET', '/api/v1/catalog/destinations'),
    api('GET', '/api/v1/sources?sort=name:asc&pagination.count=200'),
  ]);
  if (gen !== generation) return;
  const types = cat.destinations || [];
  const alert = h('p', { class: 'alert', role: 'alert' });
  const source = h('select', { id: 'new-dst-source', name: 'sourceId', 'data-field': 'source_id' },
    (srcs.sources || []).map((s) => h('option', { value: s.id, selected: s.id === sourceId ? true : null }, `${s.name} (${s.type})`)));
  const type = h('select', { id: 'new-dst-type', name: 'type', 'data-field': 'type' },
    types.map((t) => h('option', { value: t.slug }, `${t.name} (${(t.categories || []).join(', ')})`)));
  const name = h('input', { id: 'new-dst-name', name: 'name', required: true, 'data-field': 'name', autocomplete: 'off' });
  const enabled = h('input', { type: 'checkbox', id: 'new-dst-enabled', name: 'enabled' });
  enabled.checked = true;
  const settingsBox = h('fieldset', { id: 'new-dst-settings' });
  let inputs = [];
  const drawSettings = () => {
    const t = types.find((x) => x.slug === type.value) || { options: [] };
    inputs = [];
    fill(settingsBox, h('legend', {}, `${t.name || type.value} settings`));
    for (const o of t.options || []) {
      const id = `set-${o.name}`;
      const descId = `${id}-desc`;
      let input;
      const common = { id, name: o.name, 'data-field': `settings.${o.name}`, 'aria-describedby': descId, required: o.required ? true : null };
      if (o.type === 'boolean') { input = h('input', { ...common, type: 'checkbox' }); input.checked = o.defaultValue === true; }
      else if (o.type === 'select') input = h('select', common, (o.choices || []).map((c) => h('option', { value: c, selected: c === o.defaultValue ? true : null }, c)));
      else if (o.type === 'map') input = h('textarea', { ...common, rows: 2, placeholder: '{"Header-Name": "value"}' });
      else input = h('input', { ...common, type: o.secret ? 'password' : o.type === 'number' ? 'number' : o.type === 'url' ? 'url' : 'text', autocomplete: 'off',
        placeholder: o.defaultValue !== null && o.defaultValue !== undefined ? String(o.defaultValue) : null });
      inputs.push({ o, input });
      const label = h('label', { for: id }, o.name, o.required ? ' (required)' : '', o.secret ? ' · secret' : '');
      settingsBox.append(o.type === 'boolean'
        ? h('div', { class: 'check field' }, input, label, h('span', { id: descId, class: 'hint' }, o.description))
        : h('div', { class: 'field' }, label, input, h('span', { id: descId, class: 'hint' }, o.description)));
    }
  };
  type.addEventListener('change', drawSettings);
  drawSettings();
  const form = h('form', { id: 'new-destination', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    alert.textContent = '';
    const settings = {};
    for (const { o, input } of inputs) {
      if (o.type === 'boolean') { settings[o.name] = input.checked; continue; }
      const v = input.value.trim();
      if (!v) continue;
      if (o.type === 'number') settings[o.name] = Number(v);
      else if (o.type === 'map') {
        try { settings[o.name] = JSON.parse(v); } catch { alert.textContent = `${o.name}: enter a JSON object.`; markField(form, `settings.${o.name}`); return; }
      } else settings[o.name] = v;
    }
    try {
      const r = await api('POST', '/api/v1/destinations', { name: name.value.trim(), type: type.value, sourceId: source.value, enabled: enabled.checked, settings });
      flash = 'Destination connected.';
      location.hash = '#/destinations/' + encodeURIComponent(r.destination.id);
    } catch (ex) { alert.textContent = errorText(ex); markField(form, ex.field); }
  } },
  h('div', { class: 'field' }, h('label', { for: 'new-dst-source' }, 'Source'), source),
  h('div', { class: 'field' }, h('label', { for: 'new-dst-type' }, 'Destination type'), type),
  h('div', { class: 'field' }, h('label', { for: 'new-dst-name' }, 'Name'), name),
  h('div', { class: 'check field' }, enabled, h('label', { for: 'new-dst-enabled' }, 'Enabled: send events as soon as it is created')),
  settingsBox, alert, h('button', { type: 'submit' }, 'Connect destination'));
  add(main, heading('Connect a destination'), h('p', {}, h('a', { href: '#/destinations' }, '← All destinations')), form);
}

// ---------------------------------------------------------------------------

window.addEventListener('hashchange', () => render());
document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
render();
