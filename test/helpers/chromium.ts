/**
 * Headless Chromium for the dashboard tests: Debian's `chromium` package (installed by the
 * global setup), driven by playwright-core — never a browser downloaded by a test tool.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';

// No background traffic: this machine has no internet, and Chromium's update, sync and
// network-prediction calls would fail (noisily) at every start.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
