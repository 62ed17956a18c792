// Behind a TLS-terminating reverse proxy: the same pages work over https with the __Host-
// cookies, and the sessions page shows the client address the proxy forwarded.
//
// The proxy is a few lines of node (https in, http to nosd, Host kept, X-Forwarded-For set)
// with a throw-away self-signed certificate made by openssl for this test.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, login, openPage, screenshot, setupAdmin, startNosd } from './lib/harness.js';

/** The address the proxy reports for the browser, as a proxy on another host would report a LAN client. */
const FORWARDED_CLIENT = '192.0.2.44';

let server;
let proxy;
let proxyUrl;
let browser;
let admin;

function startProxy(certDir, upstream) {
  const target = new URL(upstream);
  const tlsServer = https.createServer({
    key: readFileSync(path.join(certDir, 'key.pem')),
    cert: readFileSync(path.join(certDir, 'cert.pem')),
  }, (request, response) => {
    const forwarded = http.request({
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, 'x-forwarded-for': FORWARDED_CLIENT, 'x-forwarded-proto': 'https' },
    }, (upstreamResponse) => {
      response.writeHead(upstreamResponse.statusCode, upstreamResponse.headers);
      upstreamResponse.pipe(response);
    });
    forwarded.on('error', () => { response.writeHead(502); response.end(); });
    request.pipe(forwarded);
  });
  return new Promise((resolve) => tlsServer.listen(0, '127.0.0.1', () => resolve(tlsServer)));
}

before(async () => {
  server = await startNosd('', 'trust_proxy = ["127.0.0.1/32"]');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost', '-keyout', path.join(server.dir, 'key.pem'), '-out', path.join(server.dir, 'cert.pem')], { stdio: 'ignore' });
  proxy = await startProxy(server.dir, server.url);
  proxyUrl = `https://localhost:${proxy.address().port}`;
  browser = await launchBrowser();
  admin = await setupAdmin(server);
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve()));
  await server?.stop();
});

test('sign in and use the pages through an https proxy', async () => {
  const { page, context, problems } = await openPage(browser, { ignoreHTTPSErrors: true });
  await login(page, { url: proxyUrl }, 'admin', await admin.authenticator.nextCode());
  const cookies = await context.cookies();
  const session = cookies.find((cookie) => cookie.name === '__Host-nos_sid');
  assert.ok(session, 'the session cookie is set over https');
  assert.equal(session.secure, true);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');

  await page.goto(`${proxyUrl}/sessions`);
  await page.locator('#page[data-ready]').waitFor({ state: 'attached' });
  await page.getByRole('cell', { name: FORWARDED_CLIENT }).waitFor();
  await screenshot(page, 'tls-proxy-sessions');

  // A CSRF-checked POST through the proxy works (Origin https://localhost:port matches Host).
  await page.goto(`${proxyUrl}/allowlist`);
  await page.getByLabel('Command', { exact: true }).fill('blkid /dev/sdb');
  await page.getByRole('button', { name: 'Check' }).click();
  await page.locator('.verdict .allowed, .verdict .denied').waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});
