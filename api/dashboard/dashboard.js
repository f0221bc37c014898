/* Campaigns dashboard. Plain JavaScript, no build step; the chart is uPlot (vendored).
 *
 * Every number on the page is a value the public pipes returned (/v0/pipes/<pipe>.json),
 * read with the visitor's token. The token comes from the URL fragment (#token=...,
 * removed from the address bar at once) or the sign-in field, is kept in sessionStorage
 * and is sent only in the Authorization header: no URL this page requests carries it.
 * The view (campaign_id, start_date, end_date, granularity) lives in the page's query
 * string so it can be shared; the token never does. The label and hover definition of
 * every metric and rate come from the metric declaration, GET /v0/definitions (public,
 * fetched once at start); the page chooses only which columns it shows where. */
(() => {
  'use strict';

  const TOKEN_KEY = 'campaigns.dashboard.token';
  const REFRESH_MS = 5000;
  const PAGE = 10;          // rows per card page (links, domains, recipients)
  const CSV_LIMIT = 10000;  // the pipes' largest page
  const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/;
  const GRANULARITIES = ['hour', 'day', 'week', 'month'];

  /* Which columns each part of the page shows, in its order. The label and the hover
   * definition of every metric and rate are the declaration's (rollup/metrics.py), read
   * once from GET /v0/definitions at start: there is no copy of them here. */
  const HEADLINE = ['sends', 'delivered', 'unique_opens', 'unique_clicks', 'open_rate',
    'click_to_open_rate', 'human_open_rate', 'human_click_rate', 'bounce_rate',
    'unsubscribe_rate'];
  const DETAILS = ['opens', 'clicks', 'bounces', 'complaints', 'unsubscribes',
    'unique_human_opens', 'unique_human_clicks', 'machine_opens', 'machine_clicks',
    'campaign_start', 'last_activity'];
  const LIST_COLUMNS = ['campaign_id', 'sends', 'delivered', 'unique_opens', 'open_rate',
    'click_to_open_rate', 'human_open_rate', 'bounce_rate', 'campaign_start', 'last_activity'];
  const LINK_COLUMNS = ['link_url', 'clicks', 'unique_clicks', 'human_clicks',
    'unique_human_clicks', 'first_click', 'last_click'];
  const DOMAIN_COLUMNS = ['domain', 'sends', 'delivered', 'bounce_rate', 'complaint_rate',
    'unique_opens', 'unique_open_rate', 'unique_clicks', 'bounces', 'complaints', 'opens',
    'clicks'];
  const RECIPIENT_COLUMNS = ['recipient_id', 'recipient_email', 'sends', 'delivered', 'opens',
    'clicks', 'bounces', 'complaints', 'unsubscribes', 'first_activity', 'last_activity',
    'last_event_type', 'clicked_links'];
  const TIMELINE_TABLE = ['bucket', 'sends', 'delivered', 'opens', 'unique_opens', 'clicks',
    'unique_clicks', 'bounces', 'complaints', 'unsubscribes', 'machine_opens',
    'machine_clicks'];
  const FUNNEL = ['sends', 'delivered', 'unique_opens', 'unique_clicks'];
  /* Labels of the columns that are not declared metrics: the answers' keys and the
   * recipient fields (the declaration's label wins should it ever declare one). */
  const KEY_LABELS = {
    campaign_id: 'Campaign', link_url: 'Link', domain: 'Domain', recipient_id: 'Recipient',
    recipient_email: 'Email', first_activity: 'First event', last_event_type: 'Last event type',
    clicked_links: 'Clicked links',
  };
  const TEXT_COLUMNS = new Set(['campaign_id', 'link_url', 'domain', 'recipient_id',
    'recipient_email', 'last_event_type', 'clicked_links']);
  const COLORS = {
    sends: '#7b8794', delivered: '#2f5bea', opens: '#18a058', clicks: '#e07b00',
    bounces: '#c0362c', human_opens: '#18a058', machine_opens: '#9fd8b8',
    human_clicks: '#e07b00', machine_clicks: '#f4c98a', open_rate: '#18a058',
    click_to_open_rate: '#e07b00', human_open_rate: '#2f5bea', bounce_rate: '#c0362c',
  };

  const state = {
    declared: { metrics: {}, rates: {} },  // GET /v0/definitions: {metrics, rates, layouts}
    labelsReady: null,  // the promise of that one request (settled, never rejected)
    token: null,
    claims: null,
    campaign: '',
    start: '',
    end: '',
    granularity: 'auto',
    series: 'volume',
    cumulative: false,
    sort: { key: 'campaign_start', dir: 'desc' },
    campaigns: [],
    campaignsKey: '',
    stats: null,
    timeline: null,
    timelineKey: '',
    limits: { links: PAGE, domains: PAGE, recipients: PAGE },
    recipientQuery: { q: '', type: '' },
    generation: 0,
    loads: 0,
    busy: false,
    timer: null,
    chart: null,
    chartKey: '',
  };

  /* ---------------------------------------------------------------- helpers */
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const numbers = new Intl.NumberFormat('en-US');

  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role'
               || key === 'title' || key === 'tabindex' || key === 'id' || key === 'href'
               || key === 'scope' || key === 'type') el.setAttribute(key, value === true ? '' : value);
      else el[key] = value;
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** The exact value as text: numbers as JavaScript prints them (round-trips the JSON
   * number), strings verbatim, null as "null". */
  function raw(value) {
    if (value === null || value === undefined) return 'null';
    if (Array.isArray(value)) return JSON.stringify(value);
    return String(value);
  }

  function display(column, value) {
    if (value === null || value === undefined) return '—';
    if (column.endsWith('_rate')) return `${value.toFixed(2)} %`;
    if (Array.isArray(value)) return value.length ? value.join(', ') : '—';
    if (typeof value === 'number') return numbers.format(value);
    if (value === '' && column === 'domain') return '(no domain)';
    return String(value);
  }

  function percent(part, whole) {
    if (!whole) return '—';
    return `${(part / whole * 100).toFixed(1)} %`;
  }

  function toEpoch(text) {
    const m = DATE_RE.exec(text || '');
    if (!m) return NaN;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0)) / 1000;
  }

  function fromEpoch(epoch) {
    return new Date(epoch * 1000).toISOString().slice(0, 19).replace('T', ' ');
  }

  const toInput = (text) => (!text ? '' : text.length === 10 ? `${text}T00:00:00` : text.replace(' ', 'T'));
  const fromInput = (value) => (!value ? '' : (value.length === 16 ? `${value}:00` : value).replace('T', ' '));

  function query(params) {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== '' && value !== null && value !== undefined) q.set(key, String(value));
    }
    return q.toString();
  }

  /* ---------------------------------------------------------------- the declaration */
  const DEFINITIONS_URL = '/v0/definitions';

  function declaredEntry(column) {
    const { metrics, rates } = state.declared;
    const entry = Object.hasOwn(rates, column) ? rates[column]
      : Object.hasOwn(metrics, column) ? metrics[column] : null;
    return entry && typeof entry === 'object' ? entry : null;
  }

  /** A column's label: the declaration's for a metric or rate, the page's own for a key
   * column, else (the declaration unavailable) the column's name. */
  function label(column) {
    const entry = declaredEntry(column);
    if (entry && typeof entry.label === 'string' && entry.label) return entry.label;
    return KEY_LABELS[column] || column;
  }

  /** A metric's or rate's one-line definition (its hover text), or null. */
  function definition(column) {
    const entry = declaredEntry(column);
    return entry && typeof entry.definition === 'string' && entry.definition ? entry.definition : null;
  }

  /** GET /v0/definitions, once (public: no token, so before or alongside sign-in). On a
   * failure the page says so and shows column names; it never stops the numbers. */
  async function loadDefinitions() {
    let problem = '';
    try {
      const response = await fetch(DEFINITIONS_URL, {
        cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const body = await response.json();
      const object = (value) => value && typeof value === 'object' && !Array.isArray(value);
      if (!object(body) || !object(body.metrics) || !object(body.rates)) throw new Error('the answer has no metrics and rates');
      state.declared = { metrics: body.metrics, rates: body.rates };
    } catch (error) {
      problem = error instanceof TypeError ? 'the server could not be reached' : error.message;
    }
    const msg = $('#definitions-msg');
    msg.hidden = !problem;
    msg.textContent = problem
      ? `The metric labels and definitions could not be loaded (${DEFINITIONS_URL}: ${problem}), so the numbers are shown under their column names. Reloading the page tries again.`
      : '';
    document.body.dataset.definitions = problem ? 'failed' : 'loaded';
    buildTiles();
    buildCampaignHeader();
  }

  /* ---------------------------------------------------------------- token */
  function takeFragmentToken() {
    if (!location.hash || location.hash.length < 2) return;
    const fragment = new URLSearchParams(location.hash.slice(1));
    if (!fragment.has('token')) return;
    const token = (fragment.get('token') || '').trim();
    fragment.delete('token');
    const rest = fragment.toString();
    // Out of the address bar (and so out of history, bookmarks and screen shares) at once.
    history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  }

  /** A JWT's claims, read (not verified: the server verifies) to know which pipes it may
   * read and which campaign it is pinned to, so the page asks nothing it cannot get. */
  function readClaims(token) {
    const parts = token.split('.');
    if (parts.length !== 3 || !token.startsWith('eyJ')) return null;
    try {
      const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(b64 + '==='.slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims === 'object' ? claims : null;
    } catch (_) {
      return null;
    }
  }

  function readable(pipe) {
    const scopes = state.claims && state.claims.scopes;
    if (!Array.isArray(scopes)) return true;  // an opaque token: the server decides
    return scopes.some((s) => s && s.type === 'PIPES:READ' && s.resource === pipe);
  }

  function pinnedCampaign() {
    const scopes = state.claims && state.claims.scopes;
    if (!Array.isArray(scopes)) return '';
    const order = ['campaign_stats', 'campaign_timeline', 'campaign_links', 'campaign_domains', 'recipient_activity'];
    for (const pipe of order) {
      const scope = scopes.find((s) => s && s.resource === pipe && s.fixed_params);
      if (scope && scope.fixed_params.campaign_id) return String(scope.fixed_params.campaign_id);
    }
    return '';
  }

  class PipeError extends Error {
    constructor(pipe, status, message) {
      super(message);
      this.pipe = pipe;
      this.status = status;
    }
  }

  function forbidden(pipe) {
    return new PipeError(pipe, 403, `This token may not read ${pipe}, so this card stays empty. Ask for a token with the scope PIPES:READ:${pipe}.`);
  }

  async function callPipe(pipe, params, format = 'json') {
    if (!state.token) throw new PipeError(pipe, 401, 'Signed out.');
    if (!readable(pipe)) throw forbidden(pipe);
    const search = query(params);
    const url = `/v0/pipes/${pipe}.${format}${search ? `?${search}` : ''}`;
    let response;
    try {
      response = await fetch(url, {
        headers: { Authorization: `Bearer ${state.token}` },
        cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      });
    } catch (_) {
      throw new PipeError(pipe, 0, 'The server could not be reached.');
    }
    if (response.ok) return format === 'json' ? response.json() : response.blob();
    let message = '';
    try { message = (await response.json()).error || ''; } catch (_) { /* not JSON */ }
    if (response.status === 401) {
      signOut(`The server refused this token: ${message || 'invalid or expired'}.`);
      throw new PipeError(pipe, 401, message);
    }
    if (response.status === 403) throw forbidden(pipe);
    if (response.status === 429) message = 'Too many requests for this token; the next refresh tries again.';
    throw new PipeError(pipe, response.status, message || `${pipe} answered ${response.status}.`);
  }

  /* ---------------------------------------------------------------- cards */
  function cardMessage(card, text, kind = 'info') {
    const msg = $('.card-msg', card);
    if (!msg) return;
    msg.hidden = !text;
    msg.textContent = text || '';
    msg.dataset.kind = kind;
  }

  function failure(card, error) {
    if (error.status === 401) return false;
    cardMessage(card, error.message, error.status === 403 ? 'info' : 'error');
    return error.status === 403;  // a refusal is an answer; anything else is a failed update
  }

  function headerCell(column, text) {
    return h('th', { scope: 'col', 'data-col': column, title: definition(column) }, text || label(column));
  }

  function cell(column, value) {
    return h('td', {
      class: TEXT_COLUMNS.has(column) ? 'text' : null,
      'data-col': column, 'data-value': raw(value),
      title: TEXT_COLUMNS.has(column) && value ? display(column, value) : null,
    }, display(column, value));
  }

  /** `labels`: the page's own header text for a column (else its declared label). */
  function fillTable(table, columns, rows, labels = {}) {
    const head = $('thead', table);
    if (!head.firstChild) {
      head.append(h('tr', {}, columns.map((c) => headerCell(c, labels[c]))));
    }
    $('tbody', table).replaceChildren(...rows.map((row) => h('tr', {},
      columns.map((c) => cell(c, row[c])))));
  }

  /* ---------------------------------------------------------------- campaign list */
  function buildCampaignHeader() {
    const row = $('#campaigns thead tr');
    row.replaceChildren(...LIST_COLUMNS.map((column) => h('th', {
      scope: 'col', 'data-col': column, title: definition(column),
    }, h('button', { type: 'button', 'data-sort': column, text: label(column) }))));
  }

  function sortedCampaigns() {
    const { key, dir } = state.sort;
    const sign = dir === 'asc' ? 1 : -1;
    return [...state.campaigns].sort((a, b) => {
      const x = a[key];
      const y = b[key];
      if (x === null && y === null) return 0;
      if (x === null) return 1;  // empty rates last either way
      if (y === null) return -1;
      if (typeof x === 'number') return (x - y) * sign || a.campaign_id.localeCompare(b.campaign_id);
      return String(x).localeCompare(String(y)) * sign || a.campaign_id.localeCompare(b.campaign_id);
    });
  }

  function renderCampaigns() {
    for (const th of $$('#campaigns thead th')) {
      const sorted = th.dataset.col === state.sort.key;
      if (sorted) th.setAttribute('aria-sort', state.sort.dir === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    const rows = sortedCampaigns().map((row) => {
      const link = h('a', { href: `?${query({ campaign_id: row.campaign_id, start_date: state.start, end_date: state.end })}`, 'data-campaign-link': row.campaign_id }, row.campaign_id);
      return h('tr', {
        'data-campaign-id': row.campaign_id,
        'aria-current': row.campaign_id === state.campaign ? 'true' : null,
      }, LIST_COLUMNS.map((column) => (column === 'campaign_id'
        ? h('td', { 'data-col': column, 'data-value': row.campaign_id }, link)
        : cell(column, row[column]))));
    });
    // Keep the keyboard's place when a live refresh re-draws the rows.
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.campaignLink : undefined;
    $('#campaigns tbody').replaceChildren(...rows);
    if (focused !== undefined) {
      const again = $$('#campaigns a[data-campaign-link]').find((a) => a.dataset.campaignLink === focused);
      if (again) again.focus({ preventScroll: true });
    }
    $('#campaigns-count').textContent = state.campaigns.length ? `(${state.campaigns.length})` : '';
  }

  async function loadCampaigns(generation) {
    const card = $('#campaigns-card');
    try {
      const body = await callPipe('campaign_stats', { start_date: state.start, end_date: state.end });
      if (generation !== state.generation) return true;
      cardMessage(card, body.data.length ? '' : 'No campaign has events in this range.');
      const key = JSON.stringify([body.data, state.campaign, state.start, state.end]);
      if (key !== state.campaignsKey) {  // unchanged: leave the rows (and the focus) alone
        state.campaigns = body.data;
        state.campaignsKey = key;
        renderCampaigns();
      }
      return true;
    } catch (error) {
      if (generation !== state.generation) return true;
      state.campaigns = [];
      state.campaignsKey = '';
      renderCampaigns();
      return failure(card, error);
    }
  }

  /* ---------------------------------------------------------------- headline numbers */
  function buildTiles() {
    // A rate's definition is a tooltip shown on hover and on keyboard focus; the other
    // numbers' definitions are their title.
    const tile = (column, headline) => {
      const text = definition(column);
      const tip = headline && text && Object.hasOwn(state.declared.rates, column);
      const attrs = { class: 'tile', 'data-metric': column, 'data-value': '' };
      if (tip) {
        Object.assign(attrs, { tabindex: '0', 'data-definition': text, 'aria-describedby': `tip-${column}` });
      } else {
        attrs.title = text;
      }
      return h('div', attrs,
        h('span', { class: 'label', text: label(column) }),
        h('span', { class: 'value', text: '—' }),
        tip ? h('span', { class: 'tip', role: 'tooltip', id: `tip-${column}`, text }) : null);
    };
    $('#headline').replaceChildren(...HEADLINE.map((column) => tile(column, true)));
    $('#details').replaceChildren(...DETAILS.map((column) => tile(column, false)));
  }

  function renderStats(row) {
    for (const el of $$('[data-metric]')) {
      const column = el.dataset.metric;
      const value = row ? row[column] : null;
      el.dataset.value = row ? raw(value) : '';
      $('.value', el).textContent = row ? display(column, value) : '—';
    }
    $('#headline').hidden = !row;
    $('#details').hidden = !row;
    $('#campaign-span').textContent = row
      ? `${row.campaign_start} → ${row.last_activity} UTC${state.start || state.end ? ' (in the selected range)' : ''}`
      : '';
    renderFunnel(row);
    renderHumanMachine(row);
  }

  function renderFunnel(row) {
    const card = $('#funnel-card');
    const list = $('#funnel');
    if (!row) { list.replaceChildren(); return; }
    cardMessage(card, '');
    const top = Math.max(row.sends, 1);
    list.replaceChildren(...FUNNEL.map((column, i) => {
      const value = row[column];
      const previous = i ? row[FUNNEL[i - 1]] : null;
      const width = Math.min(100, value / top * 100);
      return h('li', { 'data-step': column, 'data-value': raw(value) },
        h('span', { class: 'step', title: definition(column), text: label(column) }),
        h('div', { class: 'bar', role: 'presentation' }, h('div', { class: 'fill', 'data-width': width.toFixed(2) })),
        h('span', { class: 'nums' },
          h('b', { text: numbers.format(value) }),
          column.startsWith('unique') ? ' recipients' : ' events',
          i ? ` · ${percent(value, previous)} of ${label(FUNNEL[i - 1]).toLowerCase()}` : '',
          i > 2 ? ` · ${percent(value, row.delivered)} of delivered` : ''));
    }));
    for (const fill of $$('.fill', list)) fill.style.width = `${fill.dataset.width}%`;  // CSSOM: allowed by the CSP
  }

  function stackRow(column, human, machine, unit) {
    const total = human + machine;
    const title = label(column);
    const row = h('div', { class: 'hvm-row', 'data-col': column },
      h('div', { class: 'title' }, h('span', { title: definition(column), text: title }),
        h('span', { text: `${numbers.format(human)} human · ${numbers.format(machine)} machine ${unit}` })),
      h('div', { class: 'stack', role: 'img', 'aria-label': `${title}: ${percent(human, total)} human` },
        h('div', { class: 'human' }), h('div', { class: 'machine' })));
    $('.human', row).style.width = total ? `${human / total * 100}%` : '0';
    $('.machine', row).style.width = total ? `${machine / total * 100}%` : '0';
    return row;
  }

  function renderHumanMachine(row) {
    const box = $('#hvm');
    if (!row) { box.replaceChildren(); return; }
    cardMessage($('#hvm-card'), '');
    box.replaceChildren(
      stackRow('opens', row.opens - row.machine_opens, row.machine_opens, 'events'),
      stackRow('unique_opens', row.unique_human_opens, row.unique_opens - row.unique_human_opens, 'only'),
      stackRow('clicks', row.clicks - row.machine_clicks, row.machine_clicks, 'events'),
      stackRow('unique_clicks', row.unique_human_clicks, row.unique_clicks - row.unique_human_clicks, 'only'),
      h('div', { class: 'legend' },
        h('span', {}, h('span', { class: 'swatch human' }), 'human'),
        h('span', {}, h('span', { class: 'swatch machine' }), 'machine (proxies, scanners; "only": recipients whose every open or click was a machine\'s)')));
  }

  /* ---------------------------------------------------------------- timeline */
  function autoGranularity(row) {
    const from = toEpoch(state.start) || (row && toEpoch(row.campaign_start));
    const to = toEpoch(state.end) || (row && toEpoch(row.last_activity));
    const span = from && to ? to - from : 0;
    if (span <= 4 * 86400) return 'hour';
    if (span <= 120 * 86400) return 'day';
    if (span <= 3 * 366 * 86400) return 'week';
    return 'month';
  }

  function seriesFor(view) {
    // [id, label, value of a row]: the declared metrics and rates; human opens is
    // opens − machine_opens (campaign_timeline has no such column, nor a declared one).
    const column = (c) => [c, label(c), (r) => r[c]];
    if (view === 'human') {
      return [
        ['human_opens', 'Human opens', (r) => r.opens - r.machine_opens],
        column('machine_opens'),
        ['human_clicks', label('human_clicks'), (r) => r.clicks - r.machine_clicks],
        column('machine_clicks'),
      ];
    }
    if (view === 'rates') {
      return ['open_rate', 'click_to_open_rate', 'human_open_rate', 'bounce_rate'].map(column);
    }
    return ['sends', 'delivered', 'opens', 'clicks', 'bounces'].map(column);
  }

  function chartData(rows, series, cumulative) {
    const xs = rows.map((r) => toEpoch(r.bucket));
    const ys = series.map(([, , pick]) => {
      let sum = 0;
      return rows.map((r) => {
        const v = pick(r);
        if (!cumulative) return v;
        sum += v;
        return sum;
      });
    });
    return [xs, ...ys];
  }

  /** UTC tick labels: the date where it changes (or at the first tick), hours only when
   * the ticks fall within days. */
  function tickLabels(splits) {
    const hours = splits.some((ts) => ts % 86400 !== 0);
    let lastDay = '';
    return splits.map((ts) => {
      if (ts == null) return '';
      const text = fromEpoch(ts);
      const day = text.slice(0, 10);
      const label = hours ? (day !== lastDay ? `${text.slice(11, 16)}\n${day}` : text.slice(11, 16)) : day;
      lastDay = day;
      return label;
    });
  }

  function chartSize() {
    const el = $('#chart');
    const width = Math.max(280, Math.floor(el.clientWidth || el.getBoundingClientRect().width || 600));
    return { width, height: window.innerWidth < 760 ? 230 : 300 };
  }

  function renderChart() {
    const box = $('#chart');
    const timeline = state.timeline;
    const rates = state.series === 'rates';
    $('#cumulative').disabled = rates;
    $('#cumulative').parentElement.title = rates ? 'Rates do not add up over time; cumulative applies to counts' : '';
    if (!timeline || !timeline.rows.length || typeof uPlot === 'undefined') {
      if (state.chart) { state.chart.destroy(); state.chart = null; state.chartKey = ''; }
      box.hidden = !!(timeline && !timeline.rows.length);
      return;
    }
    box.hidden = false;
    const series = seriesFor(state.series);
    const cumulative = state.cumulative && !rates;
    const data = chartData(timeline.rows, series, cumulative);
    const key = `${state.series}|${cumulative}|${timeline.granularity}`;
    box.setAttribute('aria-label', `Timeline by ${timeline.granularity}${cumulative ? ', cumulative' : ''}: ${series.map((s) => s[1]).join(', ')}`);
    box.dataset.granularity = timeline.granularity;
    box.dataset.points = String(timeline.rows.length);
    if (state.chart && state.chartKey === key) {
      state.chart.setData(data);
      return;
    }
    if (state.chart) state.chart.destroy();
    const points = timeline.rows.length <= 48;
    const options = {
      ...chartSize(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      legend: { live: true },
      series: [
        { label: 'Time (UTC)', value: (u, ts) => (ts == null ? '—' : fromEpoch(ts)) },
        ...series.map(([id, label]) => ({
          label: cumulative ? `${label} (cumulative)` : label,
          stroke: COLORS[id] || '#555',
          width: 2,
          points: { show: points, size: 5 },
          value: (u, v) => (v == null ? '—' : rates ? `${v.toFixed(2)} %` : numbers.format(v)),
        })),
      ],
      axes: [
        {
          stroke: '#5d6673', grid: { stroke: '#eceef1' }, ticks: { stroke: '#d5d9df' },
          values: (u, splits) => tickLabels(splits),
        },
        {
          stroke: '#5d6673', grid: { stroke: '#eceef1' }, ticks: { stroke: '#d5d9df' }, size: 64,
          values: (u, values) => values.map((v) => (rates ? `${v} %` : numbers.format(v))),
        },
      ],
    };
    box.replaceChildren();
    state.chart = new uPlot(options, data, box);
    state.chartKey = key;
  }

  function renderTimelineTable() {
    const details = $('#timeline-table');
    if (!details.open || !state.timeline) return;
    const table = $('table', details);
    $('thead', table).replaceChildren();
    fillTable(table, TIMELINE_TABLE, state.timeline.rows, { bucket: `Bucket (${state.timeline.granularity}, UTC)` });
  }

  async function loadTimeline(generation, row) {
    const card = $('#timeline-card');
    const granularity = state.granularity === 'auto' ? autoGranularity(row) : state.granularity;
    try {
      const body = await callPipe('campaign_timeline', {
        campaign_id: state.campaign, start_date: state.start, end_date: state.end, granularity,
      });
      if (generation !== state.generation) return true;
      cardMessage(card, body.data.length ? '' : 'No events in this range.');
      const key = JSON.stringify([granularity, body.data]);
      if (key === state.timelineKey && state.chart) return true;  // unchanged: keep any zoom
      state.timeline = { granularity, rows: body.data };
      state.timelineKey = key;
      renderChart();
      renderTimelineTable();
      return true;
    } catch (error) {
      if (generation !== state.generation) return true;
      state.timeline = null;
      state.timelineKey = '';
      renderChart();
      $('#chart').hidden = true;
      return failure(card, error);
    }
  }

  /* ---------------------------------------------------------------- links, domains, recipients */
  function paged(card, body, shown) {
    const total = body.rows_before_limit_at_least;
    $('.count', card).textContent = total ? `(${shown} of ${numbers.format(total)})` : '';
    $('.more', card).hidden = shown >= total;
  }

  async function loadTable(generation, { card, pipe, table, columns, limitKey, params, empty }) {
    const el = $(card);
    try {
      const body = await callPipe(pipe, { ...params, limit: state.limits[limitKey] });
      if (generation !== state.generation) return true;
      cardMessage(el, body.data.length ? '' : empty);
      $('.table-wrap', el).hidden = !body.data.length;
      fillTable($(table), columns, body.data);
      paged(el, body, body.data.length);
      return true;
    } catch (error) {
      if (generation !== state.generation) return true;
      $('.table-wrap', el).hidden = true;
      $('.more', el).hidden = true;
      $('.count', el).textContent = '';
      return failure(el, error);
    }
  }

  function rangeParams() {
    return { campaign_id: state.campaign, start_date: state.start, end_date: state.end };
  }

  const loadLinks = (generation) => loadTable(generation, {
    card: '#links-card', pipe: 'campaign_links', table: '#links', columns: LINK_COLUMNS,
    limitKey: 'links', params: rangeParams(), empty: 'No clicks on links in this range.',
  });

  const loadDomains = (generation) => loadTable(generation, {
    card: '#domains-card', pipe: 'campaign_domains', table: '#domains', columns: DOMAIN_COLUMNS,
    limitKey: 'domains', params: rangeParams(), empty: 'No events in this range.',
  });

  function recipientParams() {
    const params = { ...rangeParams(), event_type: state.recipientQuery.type };
    const q = state.recipientQuery.q;
    if (q) params[q.includes('@') ? 'recipient_email' : 'recipient_id'] = q;
    return params;
  }

  const loadRecipients = (generation) => loadTable(generation, {
    card: '#recipients-card', pipe: 'recipient_activity', table: '#recipients',
    columns: RECIPIENT_COLUMNS, limitKey: 'recipients', params: recipientParams(),
    empty: state.recipientQuery.q ? `No activity for “${state.recipientQuery.q}” in this campaign and range.` : 'No recipient activity in this range.',
  });

  /* ---------------------------------------------------------------- campaign page */
  async function loadStatsAndTimeline(generation) {
    let row = null;
    let ok = true;
    try {
      const body = await callPipe('campaign_stats', rangeParams());
      if (generation !== state.generation) return true;
      row = body.data.find((r) => r.campaign_id === state.campaign) || null;
      state.stats = row;
      $('#stats-msg').hidden = !!row;
      $('#stats-msg').dataset.kind = 'info';
      $('#stats-msg').textContent = row ? '' : `No events for ${state.campaign} in this range.`;
      renderStats(row);
    } catch (error) {
      if (generation !== state.generation) return true;
      state.stats = null;
      renderStats(null);
      if (error.status === 401) return false;
      $('#stats-msg').hidden = false;
      $('#stats-msg').dataset.kind = error.status === 403 ? 'info' : 'error';
      $('#stats-msg').textContent = error.message;
      for (const c of ['#funnel-card', '#hvm-card']) cardMessage($(c), error.status === 403 ? 'Needs campaign_stats.' : error.message, 'info');
      ok = error.status === 403;
    }
    const timelineOk = await loadTimeline(generation, row);
    return ok && timelineOk;
  }

  async function loadCampaign(generation, { full }) {
    $('#campaign-title').textContent = state.campaign;
    const tasks = [loadStatsAndTimeline(generation), loadLinks(generation), loadDomains(generation)];
    if (full) tasks.push(loadRecipients(generation));
    const results = await Promise.all(tasks);
    return results.every(Boolean);
  }

  function viewKey() {
    return `${state.campaign}|${state.start}|${state.end}`;
  }

  async function refresh({ full = false } = {}) {
    if (!state.token) return;
    const generation = ++state.generation;
    state.busy = true;
    document.body.dataset.state = 'loading';
    $('#campaign').hidden = !state.campaign;
    const tasks = [loadCampaigns(generation)];
    if (state.campaign) tasks.push(loadCampaign(generation, { full }));
    let ok = false;
    try {
      ok = (await Promise.all(tasks)).every(Boolean);
    } finally {
      if (generation === state.generation) state.busy = false;
    }
    if (generation !== state.generation || !state.token) return;
    const now = new Date();
    const clock = (d) => `${d.toISOString().slice(11, 19)} UTC`;
    const updated = $('#updated');
    if (ok) {
      updated.textContent = `Updated ${clock(now)}`;
      updated.title = now.toISOString();
      updated.dataset.updated = now.toISOString();
      updated.classList.remove('stale');
    } else {
      updated.textContent = `Update failed at ${clock(now)}${updated.dataset.updated ? ` (last good ${clock(new Date(updated.dataset.updated))})` : ''}`;
      updated.classList.add('stale');
    }
    state.loads += 1;
    $('#main').dataset.view = viewKey();
    $('#main').dataset.loads = String(state.loads);
    document.body.dataset.state = 'ready';
  }

  function scheduleLive() {
    clearTimeout(state.timer);
    state.timer = null;
    if (!state.token || !$('#live').checked) return;
    state.timer = setTimeout(async () => {
      if (document.visibilityState === 'visible' && !state.busy) await refresh();
      scheduleLive();
    }, REFRESH_MS);
  }

  /* ---------------------------------------------------------------- view state (URL) */
  function readUrl() {
    const q = new URLSearchParams(location.search);
    const problems = [];
    const date = (name) => {
      const value = (q.get(name) || '').trim();
      if (value && !DATE_RE.test(value)) { problems.push(`${name} “${value}” is not YYYY-MM-DD HH:MM:SS`); return ''; }
      return value;
    };
    state.campaign = (q.get('campaign_id') || '').trim();
    state.start = date('start_date');
    state.end = date('end_date');
    const granularity = q.get('granularity') || 'auto';
    state.granularity = GRANULARITIES.includes(granularity) ? granularity : 'auto';
    rangeMessage(problems.join('; '));
    syncControls();
  }

  function writeUrl(push) {
    const search = query({
      campaign_id: state.campaign, start_date: state.start, end_date: state.end,
      granularity: state.granularity === 'auto' ? '' : state.granularity,
    });
    const url = location.pathname + (search ? `?${search}` : '');
    if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
  }

  function syncControls() {
    $('#start').value = toInput(state.start);
    $('#end').value = toInput(state.end);
    $('#granularity').value = state.granularity;
    $('#series').value = state.series;
    $('#cumulative').checked = state.cumulative;
    for (const option of $$('#preset option[value^="first"], #preset option[value^="last"]')) option.disabled = !state.campaign;
  }

  function rangeMessage(text) {
    const msg = $('#range-msg');
    msg.hidden = !text;
    msg.textContent = text || '';
  }

  function applyPin() {
    const pinned = pinnedCampaign();
    const notes = [];
    if (pinned) {
      if (state.campaign !== pinned) {
        state.campaign = pinned;
        writeUrl(false);
      }
      notes.push(`This token is limited to campaign ${pinned}.`);
    }
    const missing = ['campaign_stats', 'campaign_timeline', 'campaign_links', 'campaign_domains', 'recipient_activity'].filter((p) => !readable(p));
    if (missing.length) notes.push(`It may not read ${missing.join(', ')}.`);
    $('#notice').hidden = !notes.length;
    $('#notice').textContent = notes.join(' ');
    for (const button of $$('button.csv')) {
      const pipe = csvSpec(button.dataset.csv).pipe;
      button.disabled = !readable(pipe);
      button.title = readable(pipe) ? `Download ${pipe}.csv (sent with your token in the Authorization header)` : `This token may not read ${pipe}`;
    }
  }

  function selectCampaign(campaign, { focus = true } = {}) {
    if (pinnedCampaign() && campaign !== pinnedCampaign()) return;
    state.campaign = campaign;
    state.limits = { links: PAGE, domains: PAGE, recipients: PAGE };
    state.recipientQuery = { q: '', type: '' };
    $('#recipient-q').value = '';
    $('#recipient-type').value = '';
    state.timeline = null;
    writeUrl(true);
    syncControls();
    const done = refresh({ full: true });
    if (focus && campaign) {
      $('#campaign').hidden = false;
      $('#campaign-title').textContent = campaign;
      $('#campaign-title').focus({ preventScroll: true });
      $('#campaign').scrollIntoView({ block: 'start' });
    }
    return done;
  }

  /* ---------------------------------------------------------------- range presets */
  async function presetRange(preset) {
    const now = Math.floor(Date.now() / 1000);
    const day = 86400;
    if (preset === 'all') return ['', ''];
    if (preset === 'now24') return [fromEpoch(now - day + 1), fromEpoch(now)];
    if (preset === 'now7d') return [fromEpoch(now - 7 * day + 1), fromEpoch(now)];
    if (preset === 'now30d') return [fromEpoch(now - 30 * day + 1), fromEpoch(now)];
    // Relative to the campaign's whole life: its first and last event, from campaign_stats.
    const body = await callPipe('campaign_stats', { campaign_id: state.campaign });
    const row = body.data.find((r) => r.campaign_id === state.campaign);
    if (!row) throw new PipeError('campaign_stats', 404, `${state.campaign} has no events.`);
    const first = toEpoch(row.campaign_start);
    const last = toEpoch(row.last_activity);
    if (preset === 'first24') return [fromEpoch(first), fromEpoch(first + day - 1)];
    if (preset === 'first7d') return [fromEpoch(first), fromEpoch(first + 7 * day - 1)];
    return [fromEpoch(last - day + 1), fromEpoch(last)];  // last24
  }

  function applyRange(start, end) {
    if (start && end && toEpoch(start) > toEpoch(end)) {
      rangeMessage('The start is after the end.');
      return;
    }
    rangeMessage('');
    state.start = start;
    state.end = end;
    state.limits = { links: PAGE, domains: PAGE, recipients: PAGE };
    writeUrl(true);
    syncControls();
    refresh({ full: true });
  }

  /* ---------------------------------------------------------------- CSV */
  function csvSpec(kind) {
    const range = rangeParams();
    const granularity = state.timeline ? state.timeline.granularity
      : state.granularity === 'auto' ? autoGranularity(state.stats) : state.granularity;
    switch (kind) {
      case 'campaigns': return { pipe: 'campaign_stats', params: { start_date: state.start, end_date: state.end }, name: 'campaigns' };
      case 'stats': return { pipe: 'campaign_stats', params: range, name: `${state.campaign}-stats` };
      case 'timeline': return { pipe: 'campaign_timeline', params: { ...range, granularity }, name: `${state.campaign}-timeline-${granularity}` };
      case 'links': return { pipe: 'campaign_links', params: { ...range, limit: CSV_LIMIT }, name: `${state.campaign}-links` };
      case 'domains': return { pipe: 'campaign_domains', params: { ...range, limit: CSV_LIMIT }, name: `${state.campaign}-domains` };
      default: return { pipe: 'recipient_activity', params: { ...recipientParams(), limit: CSV_LIMIT }, name: `${state.campaign}-recipients` };
    }
  }

  async function downloadCsv(button) {
    const spec = csvSpec(button.dataset.csv);
    const label = button.textContent;
    button.disabled = true;
    button.textContent = 'Downloading…';
    try {
      const blob = await callPipe(spec.pipe, spec.params, 'csv');
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, hidden: true });
      link.download = `${spec.name.replace(/[^\w.-]+/g, '_')}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      if (error.status !== 401) {
        $('#notice').hidden = false;
        $('#notice').textContent = `CSV download failed: ${error.message}`;
      }
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  /* ---------------------------------------------------------------- sign in / out */
  function showSignin(message) {
    $('#signin').hidden = false;
    $('#main').hidden = true;
    $('#signout').hidden = true;
    $('#signin-msg').hidden = !message;
    $('#signin-msg').textContent = message || '';
    document.body.dataset.state = 'signed-out';
    $('#token-input').focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.claims = null;
    state.generation += 1;
    clearTimeout(state.timer);
    if (state.chart) { state.chart.destroy(); state.chart = null; state.chartKey = ''; }
    $('#updated').textContent = 'Signed out';
    delete $('#updated').dataset.updated;
    showSignin(message);
  }

  async function start() {
    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (!state.token) { showSignin(''); return; }
    await state.labelsReady;  // the tiles and headers, labelled from /v0/definitions
    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (!state.token) return;
    state.claims = readClaims(state.token);
    if (state.claims && typeof state.claims.exp === 'number' && state.claims.exp * 1000 < Date.now()) {
      signOut(`This token expired at ${new Date(state.claims.exp * 1000).toISOString().replace('.000', '')}.`);
      return;
    }
    $('#signin').hidden = true;
    $('#main').hidden = false;
    $('#signout').hidden = false;
    applyPin();
    syncControls();
    refresh({ full: true });
    scheduleLive();
  }

  /* ---------------------------------------------------------------- events */
  function bind() {
    $('#signin-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('#token-input').value.trim();
      if (!token) return;
      $('#token-input').value = '';
      sessionStorage.setItem(TOKEN_KEY, token);
      start();
    });
    $('#signout').addEventListener('click', () => signOut('Signed out.'));
    $('#home').addEventListener('click', (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || !state.token) return;
      event.preventDefault();
      if (pinnedCampaign()) return;
      selectCampaign('', { focus: false });
    });
    $('#range').addEventListener('submit', (event) => {
      event.preventDefault();
      $('#preset').value = '';
      applyRange(fromInput($('#start').value), fromInput($('#end').value));
    });
    $('#preset').addEventListener('change', async () => {
      const preset = $('#preset').value;
      if (!preset) return;
      try {
        const [start, end] = await presetRange(preset);
        applyRange(start, end);
      } catch (error) {
        rangeMessage(error.message);
      }
      $('#preset').value = '';
    });
    $('#live').addEventListener('change', scheduleLive);
    $('#refresh').addEventListener('click', () => refresh());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && state.token && $('#live').checked && !state.busy) refresh();
    });
    $('#campaigns thead').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-sort]');
      if (!button) return;
      const key = button.dataset.sort;
      state.sort = state.sort.key === key
        ? { key, dir: state.sort.dir === 'asc' ? 'desc' : 'asc' }
        : { key, dir: key === 'campaign_id' ? 'asc' : 'desc' };
      renderCampaigns();
    });
    $('#campaigns tbody').addEventListener('click', (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      const row = event.target.closest('tr[data-campaign-id]');
      if (!row) return;
      event.preventDefault();
      selectCampaign(row.dataset.campaignId);
    });
    $('#granularity').addEventListener('change', () => {
      state.granularity = $('#granularity').value;
      writeUrl(false);
      refresh();
    });
    $('#series').addEventListener('change', () => { state.series = $('#series').value; renderChart(); });
    $('#cumulative').addEventListener('change', () => { state.cumulative = $('#cumulative').checked; renderChart(); });
    $('#timeline-table').addEventListener('toggle', renderTimelineTable);
    $('#recipient-form').addEventListener('submit', (event) => {
      event.preventDefault();
      state.recipientQuery = { q: $('#recipient-q').value.trim(), type: $('#recipient-type').value };
      state.limits.recipients = PAGE;
      loadRecipients(state.generation);
    });
    const more = (card, key, load) => $(`${card} .more`).addEventListener('click', () => {
      state.limits[key] += PAGE;
      load(state.generation);
    });
    more('#links-card', 'links', loadLinks);
    more('#domains-card', 'domains', loadDomains);
    more('#recipients-card', 'recipients', loadRecipients);
    for (const button of $$('button.csv')) button.addEventListener('click', () => downloadCsv(button));
    window.addEventListener('popstate', () => {
      readUrl();
      applyPin();
      refresh({ full: true });
    });
    let pending = false;
    window.addEventListener('resize', () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        if (state.chart) state.chart.setSize(chartSize());
      });
    });
  }

  takeFragmentToken();
  state.labelsReady = loadDefinitions();  // builds the tiles and the list's headers
  bind();
  readUrl();
  start();
})();
