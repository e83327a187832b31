// Screenshots of the web interface's pages at desktop (1280x800) and phone (390x844) widths, in
// Debian's headless Chromium through playwright-core; for looking at the pages by hand, not a
// test. Also prints the browser console's errors and the page's failed requests.
//
//   node ui/dev/shots.mjs ORACLE_URL USER PASSWORD OUT_DIR '#/matrix' '#/vm/web1' ...
//   (USER "token:FILE" logs in with the API token in FILE)
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';

const [url, user, password, out, ...hashes] = process.argv.slice(2);
if (!url || !user || !out || !hashes.length) {
  console.error('usage: shots.mjs ORACLE_URL USER PASSWORD OUT_DIR HASH...');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--ignore-certificate-errors'],
});
const sizes = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
let failures = 0;
for (const [label, viewport] of Object.entries(sizes)) {
  const page = await browser.newPage({ viewport, ignoreHTTPSErrors: true });
  page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') console.log(`[${label} console ${m.type()}] ${m.text()}`); });
  page.on('pageerror', e => { failures++; console.log(`[${label} pageerror] ${e.message}`); });
  page.on('response', r => { if (r.status() >= 400 && !r.url().endsWith('/v1/signup')) console.log(`[${label} http ${r.status()}] ${r.request().method()} ${r.url()}`); });
  await page.goto(`${url}/ui/#/login`);
  if (user.startsWith('token:')) {
    await page.locator('summary').click();
    await page.getByTestId('login-token').fill(readFileSync(user.slice(6), 'utf8').trim());
    await page.getByTestId('login-token-submit').click();
  } else {
    await page.getByTestId('login-user').fill(user);
    await page.getByTestId('login-password').fill(password);
    await page.getByTestId('login-submit').click();
  }
  await page.waitForFunction(() => !location.hash.startsWith('#/login'), null, { timeout: 10000 });
  for (const hash of hashes) {
    await page.evaluate(h => { location.hash = h; }, hash);
    await page.waitForTimeout(Number(process.env.SHOT_WAIT || 1500));
    const name = `${hash.replace(/^#\//, '').replace(/[^a-z0-9-]+/gi, '_') || 'home'}-${label}.png`;
    await page.screenshot({ path: `${out}/${name}`, fullPage: true });
    console.log(`${out}/${name}`);
  }
  await page.close();
}
await browser.close();
process.exit(failures ? 1 : 0);
