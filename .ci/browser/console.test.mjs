// The console in real headless Chromium: Debian's /usr/bin/chromium driven by playwright-core
// (never a downloaded browser), against a real `wrapd serve` started by .ci/browser.sh.
// Env: BASE (the server), TENANT, EMAIL, PASSWORD (an operator user of the platform),
// BANK and ADVISER_EMAIL (a distributor's branch adviser, same password), SCREENSHOTS
// (optional: a directory for PNGs of the screens).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const { BASE, TENANT, EMAIL, PASSWORD, BANK, ADVISER_EMAIL, SCREENSHOTS } = process.env;
let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
});
after(async () => {
  await browser?.close();
});

async function shot(page, name) {
  if (SCREENSHOTS) await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
}

test('the sign-in form is usable with the keyboard alone', async () => {
  const page = await browser.newPage();
  await page.goto(`${BASE}/console/sign-in`);
  assert.equal(await page.getAttribute('html', 'lang'), 'ja');
  // Every field has its label.
  for (const label of ['会社コード', 'メールアドレス', 'パスワード']) {
    assert.equal(await page.getByLabel(label).count(), 1, label);
  }
  // The first Tab reaches the skip link; Tab moves through the header to the first field.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
  let id = '';
  for (let i = 0; i < 10 && id !== 'tenant'; i++) {
    await page.keyboard.press('Tab');
    id = await page.evaluate(() => document.activeElement.id);
  }
  assert.equal(id, 'tenant');
  await page.keyboard.type(TENANT);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'email');
  await page.keyboard.type(EMAIL);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'password');
  await page.keyboard.type(PASSWORD);
  await shot(page, 'sign-in');
  await Promise.all([page.waitForURL('**/console/home'), page.keyboard.press('Enter')]);
  assert.match(await page.textContent('main'), /ようこそ/);
  await page.close();
});

test('sign in, Japanese home, English, end of day, sign out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/console`);
  assert.match(page.url(), /\/console\/sign-in$/);
  await page.getByLabel('会社コード').fill(TENANT);
  await page.getByLabel('メールアドレス').fill(EMAIL);
  await page.getByLabel('パスワード').fill('a wrong password');
  await page.click('#sign-in');
  assert.equal(await page.isVisible('#sign-in-error'), true);
  await page.getByLabel('パスワード').fill(PASSWORD);
  await Promise.all([page.waitForURL('**/console/home'), page.click('#sign-in')]);

  // The home page in Japanese, with the operator's screens.
  assert.equal(await page.getAttribute('html', 'lang'), 'ja');
  assert.match(await page.textContent('h1'), /ホーム/);
  assert.equal(await page.getByRole('link', { name: '日次処理' }).first().isVisible(), true);
  await shot(page, 'home-ja');

  // English, remembered on the next page.
  await page.click('#lang-switch');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.match(await page.textContent('h1'), /Home/);
  await page.getByRole('link', { name: 'End of day' }).first().click();
  await page.waitForURL('**/console/eod');
  assert.match(await page.textContent('h1'), /End of day/);
  assert.ok(await page.isVisible('#eod-status'));
  await shot(page, 'eod-en');

  // The API document is one link away and renders without internet.
  const cookies = (await context.cookies()).map((c) => c.name);
  assert.ok(cookies.includes('wrap_session'));
  const session = (await context.cookies()).find((c) => c.name === 'wrap_session');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');

  // Sign out: back to the sign-in page, and the console is closed.
  await Promise.all([page.waitForURL('**/console/sign-in'), page.click('#sign-out')]);
  await page.goto(`${BASE}/console/eod`);
  assert.match(page.url(), /\/console\/sign-in$/);
  await context.close();
});

test('/docs renders offline from the embedded Redoc', async () => {
  const context = await browser.newContext();
  // Anything not served by wrapd itself fails, as in a bank without internet.
  await context.route('**/*', (route) =>
    route.request().url().startsWith(BASE) ? route.continue() : route.abort());
  const page = await context.newPage();
  await page.goto(`${BASE}/docs`);
  await page.waitForSelector('text=wrapd', { timeout: 30000 });
  await page.getByText('/v1/users').first().waitFor({ timeout: 30000 });
  await shot(page, 'docs');
  await context.close();
});

test('an adviser sees the customers of their branch only', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/console/sign-in`);
  await page.getByLabel('会社コード').fill(BANK);
  await page.getByLabel('メールアドレス').fill(ADVISER_EMAIL);
  await page.getByLabel('パスワード').fill(PASSWORD);
  await Promise.all([page.waitForURL('**/console/home'), page.click('#sign-in')]);
  // The customer screens and the follow-up queue, not head office's book.
  assert.equal(await page.getByRole('link', { name: '顧客' }).first().isVisible(), true);
  assert.equal(await page.getByRole('link', { name: '預り資産の概要' }).count(), 0);
  await page.getByRole('link', { name: '顧客' }).first().click();
  await page.waitForURL('**/console/customers');
  const list = await page.textContent('main');
  assert.match(list, /山田 太郎/);
  assert.doesNotMatch(list, /佐藤 次郎/);
  await shot(page, 'adviser-customers');
  await Promise.all([page.waitForURL('**/console/customers/*'), page.getByRole('link', { name: '山田 太郎' }).click()]);
  assert.match(await page.textContent('h1'), /山田 太郎/);
  await page.getByRole('link', { name: 'フォローアップ' }).first().click();
  await page.waitForURL('**/console/follow-up');
  assert.match(await page.textContent('main'), /フォローアップが必要な口座はありません/);
  // Head office's book is refused.
  const refused = await page.goto(`${BASE}/console/book`);
  assert.equal(refused.status(), 403);
  await context.close();
});
