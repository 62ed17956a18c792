// The browser-test harness: a real nosd binary on 127.0.0.1 port 0 with a temp state
// directory (like the Rust harness in host/tests/attacks/harness.rs, but as a separate process
// with the system clock), and Debian's Chromium driven by playwright-core, with every console
// error, page error and CSP violation recorded so a test can assert there were none.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { Authenticator } from './totp.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const PASSWORD = 'correct horse battery staple 42';
export const SCREENSHOTS = process.env.UI_SCREENSHOTS ?? path.join(REPO, 'target', 'ui-screenshots');

function nosdBinary() {
  if (process.env.NOSD_BIN) return process.env.NOSD_BIN;
  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target');
  return path.join(targetDir, 'debug', 'nosd');
}

/**
 * Starts nosd; resolves once it logs its bound address. `extraToml` is appended to the config;
 * `httpToml` goes into its [http] table.
 */
export async function startNosd(extraToml = '', httpToml = '') {
  const dir = mkdtempSync(path.join(tmpdir(), 'nos-ui-'));
  const stateDir = path.join(dir, 'state');
  const configPath = path.join(dir, 'nosd.toml');
  writeFileSync(configPath, [
    '[http]', 'bind = "127.0.0.1:0"', httpToml,
    '[state]', `dir = "${stateDir}"`,
    // The argon2 floor: production cost would only slow the tests down.
    '[argon2]', 'memory_kib = 19456', 'iterations = 2',
    '[allowlist]', `path = "${path.join(REPO, 'allowlist.toml')}"`,
    '[recovery]', `cmdline_path = "${path.join(dir, 'cmdline')}"`, `socket = "${path.join(dir, 'recovery.sock')}"`,
    extraToml,
  ].join('\n'));
  writeFileSync(path.join(dir, 'cmdline'), 'quiet\n');
  const env = { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' };
  delete env.NOS_RECOVERY;
  const binary = nosdBinary();
  if (!existsSync(binary)) throw new Error(`no nosd binary at ${binary}: build it (cargo build -p nos-host --bin nosd) or set NOSD_BIN`);
  const child = spawn(binary, ['--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nosd did not start within 20 s:\n${log}`)), 20_000);
    const onData = (chunk) => {
      log += chunk.toString();
      // Strip ANSI colours in case the subscriber uses them anyway.
      const match = /nosd listening.*?local\W*=\W*(127\.0\.0\.1:\d+)/.exec(log.replace(/\x1b\[[0-9;]*m/g, ''));
      if (match) { clearTimeout(timer); resolve(`http://${match[1]}`); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`nosd exited with ${code}:\n${log}`)); });
    child.on('error', (error) => { clearTimeout(timer); reject(new Error(`nosd did not start: ${error.message}`)); });
  });
  return {
    url,
    dir,
    log: () => log,
    setupToken: () => readFileSync(path.join(stateDir, 'setup-token'), 'utf8').trim(),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON call from node (not the browser): for preparing state a test is not about. */
export async function apiCall(server, method, urlPath, body) {
  const response = await fetch(server.url + urlPath, {
    method,
    headers: { 'content-type': 'application/json', 'x-nos-csrf': 'test' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** First-run setup through the API; returns the admin's authenticator and recovery codes. */
export async function setupAdmin(server, username = 'admin') {
  const token = server.setupToken();
  const begin = await apiCall(server, 'POST', '/api/v1/setup/totp', { token, username });
  if (begin.status !== 200) throw new Error(`setup/totp: ${JSON.stringify(begin)}`);
  const authenticator = new Authenticator(begin.body.secret);
  const done = await apiCall(server, 'POST', '/api/v1/setup/admin', { token, username, password: PASSWORD, code: await authenticator.nextCode() });
  if (done.status !== 201) throw new Error(`setup/admin: ${JSON.stringify(done)}`);
  return { username, authenticator, recoveryCodes: done.body.recovery_codes };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // playwright-core gives every launch a fresh temporary --user-data-dir of its own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * A fresh browser context (its own cookie jar) and page whose problems are recorded:
 * console errors, uncaught page errors, CSP violations (reported by a listener the harness
 * installs in every document), requests to anywhere but this machine, failed requests, and
 * responses >= 400 for anything that is not an /api/v1 call. Expected API refusals (401 before login, 429 on lockout) are answers the
 * page handles, so Chromium's "Failed to load resource" console line for an /api/v1 URL is
 * recorded separately, not as a problem.
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, ...options });
  const problems = [];
  const apiRefusals = [];
  await context.exposeBinding('__nosCspViolation', (_source, report) => problems.push(`CSP violation: ${report}`));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__nosCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || 'inline'} at ${event.sourceFile}:${event.lineNumber}`);
    });
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const where = message.location()?.url ?? '';
    if (message.text().startsWith('Failed to load resource') && where.includes('/api/v1/')) apiRefusals.push(where);
    else problems.push(`console error: ${message.text()} (${where})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // No external requests: every request goes to this machine's nosd (or the test's proxy).
  page.on('request', (request) => {
    const { hostname, protocol } = new URL(request.url());
    if (!['127.0.0.1', 'localhost'].includes(hostname) || !['http:', 'https:'].includes(protocol)) problems.push(`external request: ${request.url()}`);
  });
  page.on('requestfailed', (request) => {
    // Navigations away from a page cancel its pending requests; those are not failures.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && !new URL(response.url()).pathname.startsWith('/api/v1/')) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  return { context, page, problems, apiRefusals };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Signs in through the login page (mouse-free: fills and presses Enter). */
export async function login(page, server, username, code, next = '/dashboard') {
  await page.goto(`${server.url}/login${next === '/dashboard' ? '' : `?next=${encodeURIComponent(next)}`}`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${server.url}${next}`);
  await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
}


const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/**
 * axe-core's WCAG 2.1 A/AA violations on the page as it is now, one line each. axe is injected
 * as a script, which the UI's CSP rightly forbids: call this only in a context opened with
 * `bypassCSP: true` (every other context runs under the real policy).
 */
export async function axeViolations(page) {
  await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return {
      nPasses: result.passes.length,
      violations: result.violations.map((violation) => `${violation.id} (${violation.impact}): ${violation.help} at ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`),
    };
  });
  // axe really ran its rules here (labels, contrast, landmarks, names …).
  assert.ok(found.nPasses >= 10, `axe checked only ${found.nPasses} rules`);
  return found.violations;
}
