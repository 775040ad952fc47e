// The tiercache dashboard: polls the proxy's own JSON routes (no second source of truth) and
// renders them. Plain browser JavaScript, no framework and no CDN: it ships in the package.

const POLL_MS = Number(new URLSearchParams(location.search).get('poll') ?? 2000);
const HISTORY = 60; // points kept per series
const $ = (id) => document.getElementById(id);

const history = { l1: [], l2: [], all: [] };
const categoryHistory = new Map();
let previous;

/** The admin token from the header form: every data route but /status needs it. */
const token = () => $('token').value;

async function getJson(path) {
  const res = await fetch(path, {
    headers: { accept: 'application/json', authorization: `Bearer ${token()}` },
  });
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => ({}));
    throw new Error(
      `enter the admin token above to see the cache (${res.status}: ${body.message ?? res.statusText})`,
    );
  }
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

const fmt = new Intl.NumberFormat('en');
const percent = (r) => `${(r * 100).toFixed(1)} %`;
function bytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}
function push(series, value) {
  series.push(value);
  if (series.length > HISTORY) series.shift();
}

/** Hit rate within the last interval, from two readings of cumulative counters. */
function intervalRate(hits, misses, before) {
  if (!before) return undefined;
  const h = hits - before.hits;
  const total = h + (misses - before.misses);
  return total > 0 ? h / total : undefined;
}

function polyline(values, width, height) {
  const pts = [];
  values.forEach((v, i) => {
    if (v === undefined) return;
    const x = (i / Math.max(1, HISTORY - 1)) * width;
    pts.push(`${x.toFixed(1)},${(height - v * height).toFixed(1)}`);
  });
  return pts.join(' ');
}

function drawRateChart() {
  const svg = $('rate-chart');
  const lines = Object.entries(history).map(
    ([name, values]) => `<polyline class="${name}" points="${polyline(values, 600, 120)}" />`,
  );
  svg.innerHTML = lines.join('');
}

function sparkline(values) {
  return `<svg class="spark" viewBox="0 0 120 24" preserveAspectRatio="none"><polyline points="${polyline(values, 120, 24)}" /></svg>`;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fillTable(id, rows) {
  const body = $(id).querySelector('tbody');
  body.replaceChildren(...rows);
}

function renderStatus(status) {
  setText('region', status.region);
  setText('upstream', `upstream ${status.upstream}`);
  $('demo').hidden = !status.demo_data;
  setText('l2-state', `L2 ${status.l2}`);
  $('l2-state').className = `tag ${status.l2 === 'ok' || status.l2 === 'disabled' ? '' : 'warn'}`;
  const breakers = Object.entries(status.l2_breaker);
  setText(
    'breaker',
    breakers.length ? `breaker ${breakers.map(([t, s]) => `${t} ${s}`).join(', ')}` : 'no breaker',
  );
  setText('uptime', `up ${status.uptime_seconds} s`);
}

function renderStats(stats, info) {
  setText('overall-hit-rate', percent(stats.overall_hit_rate));
  setText('l1-hits', fmt.format(stats.l1_hits));
  setText('l1-misses', fmt.format(stats.l1_misses));
  setText('l1-hit-rate', `hit rate ${percent(stats.l1_hit_rate)}`);
  setText('l2-hits', fmt.format(stats.l2_hits));
  setText('l2-misses', fmt.format(stats.l2_misses));
  setText('l2-hit-rate', `hit rate ${percent(stats.l2_hit_rate)}`);
  setText('stale', fmt.format(stats.stale_while_revalidate + stats.stale_if_error));
  setText('coalesced', fmt.format(stats.coalesced_in_process + stats.coalesced_across_replicas));
  setText('l1-entries', fmt.format(info.memory_cache.current_size));
  setText('l1-bytes', `${bytes(info.memory_cache.bytes)} of ${bytes(info.memory_cache.max_bytes)}`);
  const l2 = info.l2_cache;
  setText('l2-keys', l2.current_size === undefined ? l2.type : fmt.format(l2.current_size));
  setText('l2-bytes', l2.total_size === undefined ? '' : `${bytes(l2.total_size)} used`);

  const now = { l1: stats.l1_hits, l1m: stats.l1_misses, l2: stats.l2_hits, l2m: stats.l2_misses };
  if (previous) {
    push(history.l1, intervalRate(now.l1, now.l1m, { hits: previous.l1, misses: previous.l1m }));
    push(history.l2, intervalRate(now.l2, now.l2m, { hits: previous.l2, misses: previous.l2m }));
    push(
      history.all,
      intervalRate(now.l1 + now.l2, now.l1m - now.l2, {
        hits: previous.l1 + previous.l2,
        misses: previous.l1m - previous.l2,
      }),
    );
    drawRateChart();
  }
  previous = now;
}

function renderCategories(categories) {
  const rows = Object.entries(categories).map(([name, c]) => {
    const hist = categoryHistory.get(name) ?? { values: [], before: undefined };
    const misses = c.l1_misses - c.l2_hits;
    push(hist.values, intervalRate(c.l1_hits + c.l2_hits, misses, hist.before));
    hist.before = { hits: c.l1_hits + c.l2_hits, misses };
    categoryHistory.set(name, hist);
    const tr = document.createElement('tr');
    tr.dataset.category = name;
    const spark = document.createElement('td');
    spark.innerHTML = sparkline(hist.values);
    tr.append(
      cell(name),
      cell(percent(c.overall_hit_rate), 'hit-rate'),
      spark,
      cell(fmt.format(c.l1_hits)),
      cell(fmt.format(c.l2_hits)),
      cell(fmt.format(misses)),
      cell(c.l1_keys === undefined ? '–' : fmt.format(c.l1_keys), 'l1-keys'),
      cell(c.l1_bytes === undefined ? '–' : bytes(c.l1_bytes)),
      cell(c.l2_keys == null ? '–' : fmt.format(c.l2_keys), 'l2-keys'),
      cell(c.l2_bytes == null ? '–' : bytes(c.l2_bytes)),
    );
    return tr;
  });
  fillTable('categories', rows);

  const select = $('clear-category');
  const clearable = Object.entries(categories)
    .filter(([, c]) => c.l1_keys !== undefined)
    .map(([name]) => name);
  if (select.options.length !== clearable.length) {
    select.replaceChildren(...clearable.map((name) => new Option(name, name)));
  }
}

function renderUpstreams(upstreams) {
  fillTable(
    'upstreams',
    Object.entries(upstreams).map(([name, u]) => {
      const tr = document.createElement('tr');
      tr.append(
        cell(name),
        cell(fmt.format(u.requests)),
        cell(fmt.format(u.errors), u.errors ? 'warn' : ''),
        cell(`${u.mean_latency_ms} ms`),
      );
      return tr;
    }),
  );
}

function renderNodes(topology) {
  setText('nodes-type', topology.type === 'disabled' ? '(L2 disabled)' : `(${topology.type})`);
  fillTable(
    'nodes',
    topology.nodes.map((n) => {
      const tr = document.createElement('tr');
      tr.append(
        cell(n.address),
        cell(n.role),
        cell(n.role === 'replica' ? '' : `${n.slots} (${fmt.format(n.slot_count)})`),
        cell(n.keys == null ? '–' : fmt.format(n.keys)),
        cell(n.flags.join(','), n.flags.length ? 'warn' : ''),
      );
      return tr;
    }),
  );
}

async function refreshKeys() {
  const q = $('search').value.trim();
  const data = q
    ? await getJson(`/cache/search?q=${encodeURIComponent(q)}&limit=100`)
    : await getJson('/cache/keys?limit=100');
  setText('key-count', `${data.keys.length}${data.has_more ? '+' : ''} keys`);
  fillTable(
    'keys',
    data.keys.map((k) => {
      const tr = document.createElement('tr');
      const action = document.createElement('td');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Clear';
      button.addEventListener('click', () =>
        admin(`/cache/invalidate?key=${encodeURIComponent(k.key)}`),
      );
      action.append(button);
      tr.append(cell(k.key, 'key'), cell(k.tiers.join(' + ')), action);
      return tr;
    }),
  );
}

async function poll() {
  try {
    const [status, stats, info, nodes] = await Promise.all([
      getJson('/status'),
      getJson('/api/cache/stats'),
      getJson('/cache/info'),
      getJson('/cache/nodes').catch((err) => ({ type: `unavailable: ${err.message}`, nodes: [] })),
    ]);
    renderStatus(status);
    renderStats(stats, info);
    renderCategories(stats.categories);
    renderUpstreams(stats.upstreams);
    renderNodes(nodes);
    await refreshKeys();
    $('error').hidden = true;
    setText('updated', `updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    $('error').hidden = false;
    setText('error', `could not read the proxy: ${err.message}`);
  }
}

/** A mutating admin call with the token from the form; the answer is shown as it came. */
async function admin(path) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token()}` },
  });
  const body = await res.json().catch(() => ({}));
  $('admin-result').className = res.ok ? 'ok' : 'error';
  setText(
    'admin-result',
    res.ok ? `done: ${JSON.stringify(body)}` : `${res.status}: ${body.message ?? res.statusText}`,
  );
  await poll();
}

function start() {
  $('token').value = sessionStorage.getItem('tiercache-admin-token') ?? '';
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('tiercache-admin-token', token());
    void poll();
  });
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void refreshKeys();
  });
  $('clear-prefix-button').addEventListener('click', () => {
    const prefix = $('clear-prefix').value.trim();
    if (prefix) void admin(`/cache/clear?prefix=${encodeURIComponent(prefix)}`);
  });
  $('clear-category-button').addEventListener('click', () => {
    const category = $('clear-category').value;
    if (category) void admin(`/api/cache/clear?category=${encodeURIComponent(category)}`);
  });
  $('clear-all-button').addEventListener('click', () => void admin('/cache/clear'));
  const loop = async () => {
    await poll();
    setTimeout(loop, POLL_MS);
  };
  void loop();
}

start();
