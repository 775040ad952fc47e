/**
 * The dashboard in headless Chromium (Debian's chromium driven by playwright-core) against a
 * proxy on a real 3-master Redis Cluster: it loads without console errors, shows live numbers
 * that move with traffic, lists the cluster's nodes and slots, browses keys, and its clears
 * empty what they say — and only that.
 */
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../helpers/chromium.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { startCluster, type TestCluster } from '../helpers/redis.ts';

const TOKEN = 'dashboard-admin-token';
let upstream: DemoUpstream;
let cluster: TestCluster;
let proxy: RunningProxy;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

const text = (selector: string) => page.locator(selector).innerText();
const number = async (selector: string) => Number((await text(selector)).replace(/[^\d]/g, ''));
const get = (path: string) => fetch(proxy.url + path).then((r) => r.arrayBuffer());

const admin = { headers: { authorization: `Bearer ${TOKEN}` } };

async function searchCount(q: string): Promise<number> {
  return (await json(fetch(`${proxy.url}/cache/search?q=${encodeURIComponent(q)}`, admin))).count;
}

beforeAll(async () => {
  [upstream, cluster] = await Promise.all([startDemoUpstream(), startCluster(3)]);
  proxy = await startProxy({
    TMDB_API_URL: upstream.url,
    TMDB_API_KEY: 'k',
    CRYPTO_API_URL: `${upstream.url}/api/v3`,
    REDIS_CLUSTER_NODES: cluster.spec,
    ADMIN_TOKEN: TOKEN,
  });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(err.message));
  await page.goto(`${proxy.url}/dashboard?poll=250`);
});

afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  await Promise.all([upstream?.close(), cluster?.stop()]);
});

describe('/dashboard', () => {
  it('asks for the admin token before it shows any of the cache', async () => {
    await expect
      .poll(() => text('#error'), { timeout: 15_000 })
      .toMatch(/enter the admin token above to see the cache \(401/);
    expect(await page.locator('#nodes tbody tr').count()).toBe(0);
    await page.fill('#token', TOKEN);
    await page.click('#token-form button[type=submit]');
    await expect.poll(() => page.locator('#error').isHidden()).toBe(true);
  });

  it('shows the proxy, its L2 and the cluster nodes with every slot', async () => {
    await expect.poll(() => text('#l2-state'), { timeout: 15_000 }).toBe('L2 ok');
    expect(await text('#region')).toBe((await json(fetch(`${proxy.url}/status`))).region as string);
    await expect.poll(() => page.locator('#nodes tbody tr').count()).toBe(3);
    const slots = await page.locator('#nodes tbody tr td:nth-child(3)').allInnerTexts();
    const total = slots.reduce(
      (n, s) => n + Number(/\((\d[\d,]*)\)/.exec(s)![1]!.replace(/,/g, '')),
      0,
    );
    expect(total).toBe(16384);
    expect(await page.locator('#nodes tbody tr td:nth-child(2)').allInnerTexts()).toEqual([
      'master',
      'master',
      'master',
    ]);
  });

  it('shows numbers that change after traffic, per tier and per category', async () => {
    const hitsBefore = await number('#l1-hits');
    for (let i = 0; i < 5; i++) await get('/3/movie/550');
    await get('/3/search/movie?query=fight');
    await get('/api/latest_prices?symbols=BTC,ETH');
    await get('/api/latest_prices?symbols=BTC,ETH');

    await expect
      .poll(() => number('#l1-hits'), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(hitsBefore + 4);
    await expect.poll(() => number('#l1-entries')).toBeGreaterThanOrEqual(4);
    await expect.poll(() => page.locator('#categories tr[data-category="json"]').count()).toBe(1);
    const json = page.locator('#categories tr[data-category="json"] .hit-rate');
    expect(await json.innerText()).toBe('80.0 %'); // 4 hits of 5 lookups of /3/movie/550
    await expect
      .poll(() => page.locator('#categories tr[data-category="prices"] .l2-keys').innerText(), {
        timeout: 10_000,
      })
      .toBe('2');
    await expect.poll(() => page.locator('#upstreams tbody tr').count()).toBeGreaterThanOrEqual(2);
    // Keys per node add up to what L2 holds.
    const perNode = await page.locator('#nodes tbody tr td:nth-child(4)').allInnerTexts();
    expect(perNode.reduce((n, k) => n + Number(k.replace(/,/g, '')), 0)).toBe(
      await number('#l2-keys'),
    );
  });

  it('browses and searches keys', async () => {
    await page.fill('#search', 'movie/550');
    await page.click('#search-form button[type=submit]');
    await expect
      .poll(() => page.locator('#keys tbody td.key').allInnerTexts())
      .toEqual(['tmdb:/3/movie/550']);
    expect(await page.locator('#keys tbody tr td:nth-child(2)').innerText()).toBe('l1 + l2');
  });

  it('refuses a clear without the right token and clears nothing', async () => {
    await page.fill('#token', 'wrong');
    await page.fill('#clear-prefix', 'tmdb:');
    await page.click('#clear-prefix-button');
    await expect.poll(() => text('#admin-result')).toMatch(/^401: a valid admin token/);
    expect(await searchCount('movie/550')).toBe(1);
  });

  it('clears a prefix everywhere and keeps the rest', async () => {
    expect(await searchCount('search/movie')).toBe(1);
    await page.fill('#token', TOKEN);
    await page.fill('#clear-prefix', 'tmdb:/3/search/');
    await page.click('#clear-prefix-button');
    await expect.poll(() => text('#admin-result')).toMatch(/^done: .*"l2_cleared":1/);
    expect(await searchCount('search/movie')).toBe(0);
    expect(await searchCount('movie/550')).toBe(1);
  });

  it('clears a category and one key from the browser', async () => {
    await page.selectOption('#clear-category', 'prices');
    await page.click('#clear-category-button');
    await expect.poll(() => text('#admin-result')).toMatch(/^done: .*"category":"prices"/);
    const stats = await json(fetch(`${proxy.url}/api/cache/stats`, admin));
    expect(stats.categories.prices).toMatchObject({ l1_keys: 0, l2_keys: 0 });
    expect(await searchCount('crypto:meta')).toBeGreaterThan(0); // the coin list stays

    await page.fill('#search', 'movie/550');
    await page.click('#search-form button[type=submit]');
    await page.locator('#keys tbody tr button').click();
    await expect
      .poll(() => text('#admin-result'))
      .toMatch(/^done: .*"invalidated":"tmdb:\/3\/movie\/550"/);
    expect(await searchCount('movie/550')).toBe(0);
    await expect.poll(() => page.locator('#keys tbody tr').count()).toBe(0);
  });

  it('logged no console errors but the refused requests', () => {
    // Chromium logs every non-2xx fetch; the only ones expected are 401s: the polls before the
    // token was given and while the wrong one was, and the wrong-token clear.
    expect(consoleErrors.length).toBeGreaterThan(0);
    expect(new Set(consoleErrors)).toEqual(
      new Set([
        'Failed to load resource: the server responded with a status of 401 (Unauthorized)',
      ]),
    );
  });
});
