#!/usr/bin/env node
// End-to-end test of a web-based MCP client against authhost: the official MCP
// TypeScript SDK runs INSIDE a page in headless Chromium, served from another origin
// than authhost, and does the whole OAuth flow there (discovery from the 401,
// registration, PKCE, token exchange) with cross-origin fetches, then calls `whoami`.
//
// This script: builds the page's bundle (if missing or stale), serves the page on
// 127.0.0.1:<random port>, drives Chromium through the consent page and the IdP login,
// watches every request the page sends to authhost, and reads the page's result.
//
// stdout carries exactly one JSON line (the result); everything else goes to stderr.
// Exit code 0 on success, 1 on failure. See README.md beside this file.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Nothing but the result line may reach stdout.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const here = path.dirname(fileURLToPath(import.meta.url));
const USAGE =
  'usage: node tests/browser-client/run.mjs --url <MCP URL> [--username alice] [--password alice] ' +
  '[--page-host localhost|127.0.0.1] [--chromium /usr/bin/chromium] [--screenshot-dir DIR] [--timeout 120]';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_PAGES = 8; // consent + login + slack
const STEP_TIMEOUT_MS = 30_000;
const CALLBACK_PATH = '/callback.html';

let currentStep = 'start';
const cleanups = [];
let finished = false;
let screenshotOnFailure; // set once a page exists

function log(...args) {
  console.error('[browser-client]', ...args);
}

function step(name) {
  currentStep = name;
  log(`step: ${name}`);
}

class StepError extends Error {
  constructor(stepName, { status, url, body, detail } = {}) {
    let message = `${stepName} failed`;
    if (detail) message += `: ${detail}`;
    if (status !== undefined) message += `: HTTP ${status}`;
    if (url) message += ` at ${url}`;
    if (body !== undefined) message += ` — body: ${String(body).replace(/\s+/g, ' ').slice(0, 500)}`;
    super(message);
    this.name = 'StepError';
  }
}

// ---------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  const opts = {
    username: 'alice',
    password: 'alice',
    pageHost: undefined,
    chromium: '/usr/bin/chromium',
    screenshotDir: undefined,
    timeout: 120,
  };
  const names = {
    '--url': 'url',
    '--username': 'username',
    '--password': 'password',
    '--page-host': 'pageHost',
    '--chromium': 'chromium',
    '--screenshot-dir': 'screenshotDir',
    '--timeout': 'timeout',
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === '--help' || arg === '-h') throw new Error(USAGE);
    const key = names[arg];
    if (!key) throw new Error(`unknown argument ${arg}; ${USAGE}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value; ${USAGE}`);
      value = argv[++i];
    }
    opts[key] = value;
  }
  if (opts.url === undefined) throw new Error(`--url is required; ${USAGE}`);
  try {
    opts.url = new URL(opts.url);
  } catch {
    throw new Error(`--url is not a valid URL: ${opts.url}`);
  }
  // Another origin than authhost's, and by default another site too.
  if (opts.pageHost === undefined) opts.pageHost = opts.url.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  if (opts.pageHost !== 'localhost' && opts.pageHost !== '127.0.0.1') {
    throw new Error('--page-host must be localhost or 127.0.0.1 (the page is served on loopback)');
  }
  opts.timeout = Number(opts.timeout);
  if (!(opts.timeout > 0)) throw new Error('--timeout must be a positive number of seconds');
  return opts;
}

// ---------------------------------------------------------------------------
// The page's bundle and its static server

async function ensureBundle() {
  const bundle = path.join(here, 'dist', 'app.js');
  const sources = [path.join(here, 'src', 'app.js'), path.join(here, 'build.mjs'), path.join(here, 'package-lock.json')];
  const mtime = f => {
    try {
      return fs.statSync(f).mtimeMs;
    } catch {
      return 0;
    }
  };
  const built = mtime(bundle);
  if (built > 0 && sources.every(s => mtime(s) <= built)) {
    log(`bundle up to date: ${bundle}`);
    return bundle;
  }
  let buildBundle;
  try {
    ({ buildBundle } = await import('./build.mjs'));
  } catch (e) {
    throw new Error(`cannot load esbuild (run: npm ci --prefix tests/browser-client): ${e.message}`);
  }
  log('building the page bundle with esbuild');
  await buildBundle({ quiet: true });
  log(`bundle built: ${bundle} (${fs.statSync(bundle).size} bytes)`);
  return bundle;
}

async function startPageServer(bundle, pageHost) {
  const html = fs.readFileSync(path.join(here, 'static', 'index.html'));
  const files = {
    '/': [html, 'text/html; charset=utf-8'],
    '/index.html': [html, 'text/html; charset=utf-8'],
    [CALLBACK_PATH]: [html, 'text/html; charset=utf-8'],
    '/app.js': [fs.readFileSync(bundle), 'text/javascript; charset=utf-8'],
    '/app.js.map': [fs.readFileSync(`${bundle}.map`), 'application/json'],
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const file = req.method === 'GET' ? files[url.pathname] : undefined;
    log(`[page server] ${req.method} ${url.pathname}${url.search ? '?' + [...url.searchParams.keys()].join('&') : ''} -> ${file ? 200 : 404}`);
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' }).end(file[0]);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://${pageHost}:${server.address().port}`;
  log(`page served at ${origin}`);
  return {
    origin,
    close: () =>
      new Promise(resolve => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------
// What the page sends to authhost

/** Which OAuth/MCP endpoint a request to authhost is. */
function classifyEndpoint(url, mcpUrl) {
  const u = new URL(url);
  if (u.pathname.startsWith('/.well-known/oauth-protected-resource')) return 'protected_resource_metadata';
  if (u.pathname.startsWith('/.well-known/oauth-authorization-server')) return 'authorization_server_metadata';
  if (u.pathname.startsWith('/.well-known/openid-configuration')) return 'openid_configuration';
  if (u.pathname === '/register') return 'register';
  if (u.pathname === '/token') return 'token';
  if (u.pathname === '/revoke') return 'revoke';
  if (u.origin === mcpUrl.origin && u.pathname === mcpUrl.pathname) return 'mcp';
  return 'other';
}

function watchRequests(context, page, opts) {
  const authOrigin = opts.url.origin;
  const pending = [];
  const requests = []; // page-initiated fetches to authhost, with what the network saw
  const preflights = [];
  const failures = [];
  const aborted = [];

  page.on('console', msg => log(`[page console.${msg.type()}] ${msg.text()}`));
  page.on('pageerror', e => log(`[page error] ${e?.stack ?? e}`));
  page.on('requestfailed', request => {
    const errorText = request.failure()?.errorText ?? '?';
    let rpc = '';
    try {
      const body = request.postDataJSON();
      if (body?.method) rpc = ` (${body.method})`;
    } catch {
      // not JSON
    }
    const failure = `${request.method()} ${request.url()}${rpc}: ${errorText}`;
    log(`[browser] request failed: ${failure}`);
    if (new URL(request.url()).origin !== authOrigin || request.isNavigationRequest()) return;
    // ERR_ABORTED: the page's script cancelled the request or its response body (the
    // SDK closes a response stream it no longer reads). Anything else, such as a CORS
    // rejection (net::ERR_FAILED), counts as a failure.
    if (errorText === 'net::ERR_ABORTED') aborted.push(failure);
    else failures.push(failure);
  });
  page.on('response', response => {
    const request = response.request();
    if (request.isNavigationRequest() && response.frame() === page.mainFrame()) {
      const location = response.headers().location;
      log(`[browser] navigation ${request.method()} ${response.url()} -> ${response.status()}${location ? ` Location: ${location}` : ''}`);
      return;
    }
    if (new URL(request.url()).origin !== authOrigin) return;
    if (!['fetch', 'xhr'].includes(request.resourceType())) return;
    pending.push(
      (async () => {
        const [reqHeaders, resHeaders] = await Promise.all([request.allHeaders(), response.allHeaders()]);
        const entry = {
          endpoint: classifyEndpoint(request.url(), opts.url),
          method: request.method(),
          path: new URL(request.url()).pathname,
          status: response.status(),
          content_type: resHeaders['content-type'] ?? null,
          origin: reqHeaders.origin ?? null,
          access_control_allow_origin: resHeaders['access-control-allow-origin'] ?? null,
          page_url: (() => {
            try {
              return new URL(request.frame().url()).origin + new URL(request.frame().url()).pathname;
            } catch {
              return null;
            }
          })(),
        };
        log(`[browser] page fetch ${entry.method} ${request.url()} -> ${entry.status} ${entry.content_type ?? ''} (Origin: ${entry.origin}, ACAO: ${entry.access_control_allow_origin})`);
        requests.push(entry);
      })().catch(e => log(`[browser] could not read headers of ${request.url()}: ${e.message}`)),
    );
  });
  // CORS preflights are not playwright request events; the DevTools protocol reports them.
  const cdpReady = (async () => {
    try {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      cdp.on('Network.requestWillBeSent', e => {
        if (e.type !== 'Preflight' && e.request?.method !== 'OPTIONS') return;
        if (new URL(e.request.url).origin !== authOrigin) return;
        preflights.push({ id: e.requestId, method: e.request.method, path: new URL(e.request.url).pathname, status: null });
      });
      cdp.on('Network.responseReceived', e => {
        const p = preflights.find(x => x.id === e.requestId);
        if (p) p.status = e.response.status;
      });
    } catch (e) {
      log(`CDP network tracing unavailable (preflights not counted): ${e.message}`);
    }
  })();
  return {
    ready: cdpReady,
    settle: () => Promise.allSettled(pending),
    requests,
    preflights,
    failures,
    aborted,
  };
}

// ---------------------------------------------------------------------------
// Main flow

const sleep = ms => new Promise(r => setTimeout(r, ms));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const authOrigin = opts.url.origin;

  step('build the page bundle');
  const bundle = await ensureBundle();
  const pageServer = await startPageServer(bundle, opts.pageHost);
  cleanups.push(() => pageServer.close());
  if (pageServer.origin === authOrigin) throw new Error(`the page origin ${pageServer.origin} equals authhost's origin`);

  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`cannot load playwright-core (run: npm ci --prefix tests/browser-client): ${e.message}`);
  }
  step('launch Chromium');
  if (!fs.existsSync(opts.chromium)) throw new Error(`no Chromium at ${opts.chromium} (apt-get install -y chromium)`);
  const browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS });
  const closeBrowser = () => Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  cleanups.push(closeBrowser);
  log(`Chromium ${browser.version()}`);
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const shot = async name => {
    // Screenshots are only taken on failure; without --screenshot-dir they go to a new temp dir.
    const dir = opts.screenshotDir ?? fs.mkdtempSync('/tmp/browser-client-');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, name);
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
      log(`screenshot ${file}`);
      return file;
    } catch (e) {
      log(`screenshot ${file} failed: ${e.message}`);
      return undefined;
    }
  };
  screenshotOnFailure = () => shot('failure.png');
  const watch = watchRequests(context, page, opts);
  await watch.ready;

  let lastDocument;
  page.on('response', r => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame() && !REDIRECT_STATUSES.has(r.status())) lastDocument = r;
  });
  // What the user sees of the current page (for error messages), else its HTML.
  const documentBody = async () => {
    try {
      const text = await page.locator('body').innerText({ timeout: 5000 });
      if (text.trim()) return text;
    } catch {
      // fall through
    }
    try {
      if (lastDocument) return await lastDocument.text();
    } catch {
      // fall through
    }
    return page.content().catch(() => '');
  };
  const nextDocument = () =>
    page.waitForResponse(
      r => r.request().isNavigationRequest() && r.frame() === page.mainFrame() && !REDIRECT_STATUSES.has(r.status()),
      { timeout: STEP_TIMEOUT_MS },
    );
  // "Failed to fetch" in the page hides why; the network layer knows (refused, CORS, ...).
  const networkHint = () => (watch.failures.length ? ` (network: ${watch.failures.join('; ')})` : '');
  const pageResult = () => page.evaluate(() => window.__result ?? null).catch(() => null);
  const urlOf = () => new URL(page.url());
  const atPage = () => urlOf().origin === pageServer.origin;
  const atCallback = () => atPage() && urlOf().pathname === CALLBACK_PATH;

  // 1. The page's script: 401 → discovery → registration → top-level redirect to /authorize.
  const startUrl = `${pageServer.origin}/?mcp=${encodeURIComponent(opts.url.href)}`;
  step(`open the page ${startUrl} (its script connects, gets 401, discovers, registers, redirects to /authorize)`);
  await page.goto(startUrl, { waitUntil: 'load' });
  const left = await Promise.race([
    page.waitForURL(u => u.origin !== pageServer.origin, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS }).then(() => 'navigated'),
    page.waitForFunction(() => window.__result, null, { timeout: STEP_TIMEOUT_MS, polling: 200 }).then(() => 'result'),
  ]).catch(e => {
    throw new Error(`the page neither navigated to the authorization server nor reported a result within ${STEP_TIMEOUT_MS / 1000} s (${e.message.split('\n')[0]})`);
  });
  if (left === 'result' && atPage()) {
    const r = await pageResult();
    throw new Error(`the page's script failed before the redirect: ${r?.error ?? JSON.stringify(r)}${networkHint()}`);
  }
  if (urlOf().origin !== authOrigin) throw new Error(`the page navigated to ${page.url()}, not to authhost (${authOrigin})`);
  if (urlOf().pathname !== '/authorize' && !lastDocument?.url().includes('/authorize')) {
    log(`note: first authhost page is ${page.url()}`);
  }

  // 2. The user's part: consent and the upstream IdP login, then back to the page.
  const seen = [];
  for (let i = 0; !atPage(); i++) {
    if (i >= MAX_PAGES) throw new Error(`gave up after ${MAX_PAGES} pages without coming back to the page (pages: ${seen.join(' → ')})`);
    const status = lastDocument?.status();
    if (status === undefined || status >= 400) throw new StepError(currentStep, { status, url: page.url(), body: await documentBody() });
    const approve = page.locator('button[name="decision"][value="approve"]');
    const password = page.locator('input[name="password"]');
    if ((await approve.count()) > 0) {
      seen.push('consent');
      if (seen.filter(k => k === 'consent').length > 1) {
        throw new StepError('consent page', { status, url: page.url(), detail: 'consent page shown a second time', body: await documentBody() });
      }
      for (const hidden of ['request', 'csrf_token']) {
        if ((await page.locator(`form input[type="hidden"][name="${hidden}"]`).count()) === 0) {
          throw new StepError('consent page', { status, url: page.url(), detail: `consent form has no hidden ${hidden} input`, body: await documentBody() });
        }
      }
      step('consent (click Approve, expecting the identity provider login page)');
      const next = nextDocument();
      await approve.first().click();
      await next;
      await page.waitForLoadState('load');
    } else if ((await password.count()) > 0) {
      seen.push('login');
      if (seen.filter(k => k === 'login').length > 1) {
        throw new StepError('login submit', {
          status,
          url: page.url(),
          detail: 'the login page came back after submitting the credentials (wrong username/password?)',
          body: await documentBody(),
        });
      }
      step(`login at the identity provider as ${opts.username} (expecting redirects back to the page's ${CALLBACK_PATH})`);
      await page.locator('input[name="username"]').fill(opts.username);
      await password.fill(opts.password);
      const next = nextDocument();
      const submit = page.locator('form:has(input[name="password"]) [type="submit"]');
      if ((await submit.count()) > 0) await submit.first().click();
      else await password.press('Enter');
      await next;
      await page.waitForLoadState('load');
    } else {
      throw new StepError(`${currentStep}: unexpected page`, {
        status,
        url: page.url(),
        detail: 'neither the consent form (decision=approve button) nor a login form (password input)',
        body: await documentBody(),
      });
    }
  }
  if (!atCallback()) throw new Error(`came back to the page at ${page.url()}, not at ${CALLBACK_PATH}`);
  if (!seen.includes('consent')) log('note: no consent page was shown');

  // 3. The page's script: state/iss checks, token exchange, MCP connect, whoami.
  step('wait for the page to exchange the code, connect and call whoami');
  await page
    .waitForFunction(() => window.__result, null, { timeout: STEP_TIMEOUT_MS, polling: 200 })
    .catch(async e => {
      const status = await page.locator('#status').textContent().catch(() => '?');
      throw new Error(`the page reported no result within ${STEP_TIMEOUT_MS / 1000} s (page status: ${status}; ${e.message.split('\n')[0]})`);
    });
  const result = await pageResult();
  await sleep(200); // let the last response events arrive
  await watch.settle();
  if (!result?.ok) throw new Error(`the page failed: ${result?.error ?? JSON.stringify(result)}${networkHint()}`);

  // 4. Proof that the OAuth and MCP requests came from the page, cross-origin.
  step('check the cross-origin requests the page sent');
  const cross = watch.requests.filter(r => r.origin === pageServer.origin);
  const endpoints = new Set(cross.map(r => r.endpoint));
  const missing = ['protected_resource_metadata', 'authorization_server_metadata', 'register', 'token', 'mcp'].filter(e => !endpoints.has(e));
  if (missing.length) {
    throw new Error(`no cross-origin request from the page (Origin: ${pageServer.origin}) to: ${missing.join(', ')}; seen: ${JSON.stringify(watch.requests)}`);
  }
  const badAcao = cross.filter(r => r.access_control_allow_origin !== pageServer.origin && r.access_control_allow_origin !== '*');
  if (badAcao.length) throw new Error(`responses without a matching Access-Control-Allow-Origin: ${JSON.stringify(badAcao)}`);
  if (!result.www_authenticate) {
    throw new Error('the page could not read WWW-Authenticate on the 401 (not exposed by CORS: Access-Control-Expose-Headers)');
  }
  const failedPreflights = watch.preflights.filter(p => p.status !== null && (p.status < 200 || p.status >= 300));
  if (failedPreflights.length) throw new Error(`CORS preflights failed: ${JSON.stringify(failedPreflights)}`);
  if (watch.failures.length) throw new Error(`requests from the page to authhost failed: ${watch.failures.join('; ')}`);
  if (watch.aborted.length) log(`note: requests the page's script cancelled: ${watch.aborted.join('; ')}`);

  step('done');
  const countBy = list => list.reduce((acc, r) => ((acc[r.endpoint] = (acc[r.endpoint] ?? 0) + 1), acc), {});
  return {
    ok: true,
    whoami: result.whoami,
    tools: result.tools,
    page_origin: pageServer.origin,
    authhost_origin: authOrigin,
    cors_requests: cross.length,
    cors_requests_by_endpoint: countBy(cross),
    preflights: watch.preflights.length,
    preflight_paths: [...new Set(watch.preflights.map(p => `${p.path} ${p.status}`))],
    cancelled_requests: watch.aborted.length,
    www_authenticate: result.www_authenticate,
    registered_client_id: result.registered_client_id,
    issuer: result.issuer,
    pages: seen,
  };
}

async function runCleanups() {
  for (const fn of cleanups.reverse()) {
    try {
      await Promise.race([fn(), sleep(5000)]);
    } catch {
      // best effort
    }
  }
}

function finish(result, code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

const argTimeout = (() => {
  const argv = process.argv;
  const i = argv.findIndex(a => a === '--timeout' || a.startsWith('--timeout='));
  if (i < 0) return 120;
  const v = Number(argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1]);
  return v > 0 ? v : 120;
})();
let timedOut = false;
setTimeout(async () => {
  if (finished) return;
  timedOut = true; // from here on, only this handler reports
  log(`global timeout (${argTimeout} s) during step: ${currentStep}`);
  const screenshot = await Promise.race([screenshotOnFailure?.(), sleep(5000)]);
  finish({ ok: false, error: `global timeout after ${argTimeout} s during step: ${currentStep}`, screenshot }, 1);
}, argTimeout * 1000);

process.on('unhandledRejection', e => log(`unhandled rejection: ${e?.stack ?? e}`));

main().then(
  async result => {
    if (timedOut) return;
    await runCleanups();
    finish(result, 0);
  },
  async error => {
    if (timedOut) return;
    log(`FAILED: ${error?.stack ?? error}`);
    const screenshot = await screenshotOnFailure?.();
    await runCleanups();
    let message = error?.message ?? String(error);
    if (!(error instanceof StepError) && currentStep !== 'start' && !message.startsWith(currentStep)) message = `${currentStep}: ${message}`;
    finish({ ok: false, error: message, ...(screenshot ? { screenshot } : {}) }, 1);
  },
);
