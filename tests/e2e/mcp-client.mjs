#!/usr/bin/env node
// End-to-end MCP client for authhost's integration tests.
//
// Uses the official MCP TypeScript SDK client the way a real MCP client does:
// connect → 401 → discovery (RFC 9728 → RFC 8414) → registration → authorization
// with PKCE (driven headless with fetch, or through real headless Chromium) →
// token exchange → tools/call → wait for the access token to expire → tools/call
// again, which makes the SDK refresh the token.
//
// stdout carries exactly one JSON line (the result); everything else goes to stderr.
// See README.md beside this file.

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// Nothing but the result line may reach stdout: route console.log/info (ours or a
// dependency's) to stderr.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const USAGE =
  'usage: node tests/e2e/mcp-client.mjs --url <MCP URL> --mode headless|browser ' +
  '--username <u> --password <p> [--tool whoami] [--calls-after-expiry 1] ' +
  '[--chromium /usr/bin/chromium] [--screenshot-dir DIR] [--timeout 120]';

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
const MAX_PAGES = 8; // consent + login + slack for unexpected intermediate pages
const MAX_REDIRECTS = 20;
const STEP_TIMEOUT_MS = 30_000;

let currentStep = 'start';
const cleanups = []; // async functions run (best effort) before exiting
let finished = false;

function log(...args) {
  console.error('[mcp-client]', ...args);
}

function step(name) {
  currentStep = name;
  log(`step: ${name}`);
}

/** An error tied to one page/step of the flow, carrying the HTTP status and body. */
class StepError extends Error {
  constructor(stepName, { status, url, body, detail } = {}) {
    let message = `${stepName} failed`;
    if (detail) message += `: ${detail}`;
    if (status !== undefined) message += `: HTTP ${status}`;
    if (url) message += ` at ${url}`;
    if (body !== undefined) message += ` — body: ${String(body).slice(0, 500)}`;
    super(message);
    this.name = 'StepError';
  }
}

// ---------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  const opts = {
    tool: 'whoami',
    callsAfterExpiry: 1,
    chromium: '/usr/bin/chromium',
    screenshotDir: undefined,
    timeout: 120,
  };
  const names = {
    '--url': 'url',
    '--mode': 'mode',
    '--username': 'username',
    '--password': 'password',
    '--tool': 'tool',
    '--calls-after-expiry': 'callsAfterExpiry',
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
  for (const required of ['url', 'mode', 'username', 'password']) {
    if (opts[required] === undefined) throw new Error(`--${required} is required; ${USAGE}`);
  }
  if (opts.mode !== 'headless' && opts.mode !== 'browser') {
    throw new Error(`--mode must be headless or browser, got ${JSON.stringify(opts.mode)}`);
  }
  try {
    opts.url = new URL(opts.url);
  } catch {
    throw new Error(`--url is not a valid URL: ${opts.url}`);
  }
  opts.callsAfterExpiry = Number(opts.callsAfterExpiry);
  if (!Number.isInteger(opts.callsAfterExpiry) || opts.callsAfterExpiry < 0) {
    throw new Error('--calls-after-expiry must be a non-negative integer');
  }
  opts.timeout = Number(opts.timeout);
  if (!(opts.timeout > 0)) throw new Error('--timeout must be a positive number of seconds');
  return opts;
}

// ---------------------------------------------------------------------------
// Local redirect target: http://127.0.0.1:<port>/callback

async function startCallbackServer() {
  let resolveCallback;
  const callback = new Promise(resolve => (resolveCallback = resolve));
  let received = false;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const params = {};
    for (const name of ['code', 'state', 'iss', 'error', 'error_description']) {
      const v = url.searchParams.get(name);
      if (v !== null) params[name] = v;
    }
    log(`redirect received at local callback: ${Object.keys(params).join(', ') || '(no parameters)'}`);
    if (!received) {
      received = true;
      resolveCallback(params);
    }
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Authorization complete</title></head>' +
          '<body><h1>Authorization complete</h1><p>You can close this window.</p></body></html>',
      );
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const redirectUrl = `http://127.0.0.1:${port}/callback`;
  log(`callback server listening on ${redirectUrl}`);
  return {
    redirectUrl,
    callback,
    hasReceived: () => received,
    close: () =>
      new Promise(resolve => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------
// OAuthClientProvider, all in memory

const short = token => (typeof token === 'string' ? `${token.slice(0, 6)}…(${token.length})` : String(token));

class InMemoryOAuthClientProvider {
  constructor(redirectUrl) {
    this._redirectUrl = redirectUrl;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this.expectedState = undefined;
    this.tokenSaves = []; // { at, access_token, expires_in, has_refresh_token }
    this.authorizationUrls = []; // every redirectToAuthorization call
    this.invalidations = [];
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: 'authhost e2e client',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  // No clientMetadataUrl on purpose: the SDK then always uses dynamic client registration.

  state() {
    this.expectedState = crypto.randomBytes(24).toString('base64url');
    return this.expectedState;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    log(`saveClientInformation: client_id=${info.client_id}${info.client_secret ? ' (with client_secret)' : ''}`);
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    // Stored unchanged (the SDK stamps an `issuer` property it reads back).
    this._tokens = tokens;
    this.tokenSaves.push({
      at: Date.now(),
      access_token: tokens.access_token,
      expires_in: tokens.expires_in,
      has_refresh_token: Boolean(tokens.refresh_token),
    });
    log(
      `saveTokens #${this.tokenSaves.length}: access_token=${short(tokens.access_token)} ` +
        `token_type=${tokens.token_type} expires_in=${tokens.expires_in} ` +
        `refresh_token=${tokens.refresh_token ? short(tokens.refresh_token) : 'none'} scope=${tokens.scope ?? '-'}`,
    );
  }

  redirectToAuthorization(authorizationUrl) {
    // The user agent is driven by main() once the SDK has given up with
    // UnauthorizedError, as a real client opens the browser here.
    log(`redirectToAuthorization: ${authorizationUrl.href}`);
    this.authorizationUrls.push(new URL(authorizationUrl.href));
  }

  saveCodeVerifier(codeVerifier) {
    this._codeVerifier = codeVerifier;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no PKCE code verifier saved');
    return this._codeVerifier;
  }

  invalidateCredentials(scope) {
    log(`invalidateCredentials(${scope})`);
    this.invalidations.push(scope);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }
}

// ---------------------------------------------------------------------------
// Minimal HTML form parsing (enough for authhost's consent page and the IdP login)

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (m, e) => {
    const lower = e.toLowerCase();
    if (lower === 'amp') return '&';
    if (lower === 'lt') return '<';
    if (lower === 'gt') return '>';
    if (lower === 'quot') return '"';
    if (lower === 'apos' || lower === '#39') return "'";
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return m;
  });
}

function parseAttributes(s) {
  const attrs = {};
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(s))) {
    const name = m[1].toLowerCase();
    if (name in attrs) continue;
    attrs[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

function parseForms(html) {
  const forms = [];
  const formRe = /<form\b([^>]*)>([\s\S]*?)<\/form\s*>/gi;
  let fm;
  while ((fm = formRe.exec(html))) {
    const attrs = parseAttributes(fm[1]);
    const inner = fm[2];
    const inputs = [];
    const inputRe = /<input\b([^>]*)>/gi;
    let im;
    while ((im = inputRe.exec(inner))) inputs.push(parseAttributes(im[1]));
    const buttons = [];
    const buttonRe = /<button\b([^>]*)>([\s\S]*?)<\/button\s*>/gi;
    let bm;
    while ((bm = buttonRe.exec(inner))) {
      const b = parseAttributes(bm[1]);
      b.text = decodeEntities(bm[2].replace(/<[^>]*>/g, '')).trim();
      buttons.push(b);
    }
    forms.push({
      action: attrs.action,
      method: (attrs.method || 'get').toLowerCase(),
      inputs,
      buttons,
    });
  }
  return forms;
}

function classifyPage(html) {
  const forms = parseForms(html);
  const consent = forms.find(f => f.buttons.some(b => b.name === 'decision' && b.value === 'approve'));
  if (consent) return { kind: 'consent', form: consent };
  const login = forms.find(f => f.inputs.some(i => i.name === 'password'));
  if (login) return { kind: 'login', form: login };
  return { kind: 'unknown', forms };
}

function hiddenFields(form) {
  const params = new URLSearchParams();
  for (const input of form.inputs) {
    if ((input.type || '').toLowerCase() === 'hidden' && input.name) params.append(input.name, input.value ?? '');
  }
  return params;
}

// ---------------------------------------------------------------------------
// Headless user agent: fetch with manual redirects and a per-origin cookie jar

class CookieJar {
  constructor() {
    this.byOrigin = new Map(); // "host:port" -> Map(name -> value)
  }

  static key(url) {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  }

  header(url) {
    const jar = this.byOrigin.get(CookieJar.key(url));
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(url, response) {
    const setCookies = response.headers.getSetCookie?.() ?? [];
    if (setCookies.length === 0) return;
    const key = CookieJar.key(url);
    let jar = this.byOrigin.get(key);
    if (!jar) this.byOrigin.set(key, (jar = new Map()));
    for (const sc of setCookies) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = false;
      for (const attr of attrs) {
        const [an, ...av] = attr.split('=');
        const aname = an.trim().toLowerCase();
        const aval = av.join('=').trim();
        if (aname === 'max-age' && Number(aval) <= 0) expired = true;
        if (aname === 'expires' && Date.parse(aval) < Date.now()) expired = true;
      }
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
  }
}

function makeHeadlessAgent(callbackUrl) {
  const jar = new CookieJar();
  const callbackOrigin = new URL(callbackUrl).origin;
  const callbackPath = new URL(callbackUrl).pathname;

  /**
   * Load `url` like a browser would (following redirects), returning the final page.
   * Reaching the local callback ends the chain: it is requested (as a browser would)
   * and reported as { callback: true }.
   */
  async function navigate(stepName, url, { method = 'GET', body, referer } = {}) {
    let current = new URL(url);
    let hops = 0;
    let origin = referer ? new URL(referer).origin : undefined;
    for (;;) {
      const headers = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'user-agent': 'authhost-e2e-client (headless)' };
      const cookie = jar.header(current);
      if (cookie) headers.cookie = cookie;
      if (method === 'POST') {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        if (origin) headers.origin = origin;
      }
      if (referer) headers.referer = referer;
      let response;
      try {
        response = await fetch(current, {
          method,
          body,
          headers,
          redirect: 'manual',
          signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
        });
      } catch (e) {
        throw new StepError(stepName, { url: current.href, detail: `${method} request failed (${e.cause?.message ?? e.message})` });
      }
      jar.store(current, response);
      log(`[headless] ${method} ${current.href} -> ${response.status}${response.headers.get('location') ? ` Location: ${response.headers.get('location')}` : ''}`);
      const isCallback = current.origin === callbackOrigin && current.pathname === callbackPath;
      if (REDIRECT_STATUSES.has(response.status)) {
        const location = response.headers.get('location');
        await response.body?.cancel();
        if (!location) throw new StepError(stepName, { status: response.status, url: current.href, detail: 'redirect without a Location header', body: '' });
        if (++hops > MAX_REDIRECTS) throw new StepError(stepName, { status: response.status, url: current.href, detail: `more than ${MAX_REDIRECTS} redirects` });
        let next;
        try {
          next = new URL(location, current);
        } catch {
          throw new StepError(stepName, { status: response.status, url: current.href, detail: `unparseable Location ${JSON.stringify(location)}` });
        }
        if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        // A browser sends Origin on a redirected POST (307/308) as "null" when it crosses origins.
        if (origin && next.origin !== current.origin) origin = 'null';
        referer = undefined; // keep it simple: only the first request of a chain has one
        current = next;
        continue;
      }
      const text = await response.text();
      if (isCallback) return { callback: true, url: current.href, status: response.status };
      if (!response.ok) throw new StepError(stepName, { status: response.status, url: current.href, body: text });
      return { callback: false, url: current.href, status: response.status, html: text };
    }
  }

  async function submitForm(stepName, page, form, params) {
    const action = new URL(form.action || page.url, page.url);
    if (form.method === 'post') {
      return navigate(stepName, action, { method: 'POST', body: params.toString(), referer: page.url });
    }
    for (const [k, v] of params) action.searchParams.append(k, v);
    return navigate(stepName, action, { referer: page.url });
  }

  return { navigate, submitForm };
}

async function authorizeHeadless(authorizationUrl, opts, callbackUrl) {
  const agent = makeHeadlessAgent(callbackUrl);
  step('authorization request (GET authorization URL, expecting the consent page)');
  let page = await agent.navigate(currentStep, authorizationUrl);
  const seen = [];
  for (let i = 0; !page.callback; i++) {
    if (i >= MAX_PAGES) throw new Error(`gave up after ${MAX_PAGES} pages without reaching the callback (pages: ${seen.join(' → ')})`);
    const kind = classifyPage(page.html);
    seen.push(kind.kind);
    if (kind.kind === 'consent') {
      if (seen.filter(k => k === 'consent').length > 1) {
        throw new StepError('consent page', { status: page.status, url: page.url, detail: 'consent page shown a second time', body: page.html });
      }
      const params = hiddenFields(kind.form);
      const names = [...params.keys()];
      for (const required of ['request', 'csrf_token']) {
        if (!names.includes(required)) {
          throw new StepError('consent page', { status: page.status, url: page.url, detail: `consent form has no hidden ${required} input`, body: page.html });
        }
      }
      log(`[headless] consent page at ${page.url}: form ${kind.form.method.toUpperCase()} ${kind.form.action}, hidden inputs ${names.join(', ')}`);
      params.append('decision', 'approve');
      step('consent submit (POST decision=approve, expecting a redirect to the identity provider login page)');
      page = await agent.submitForm(currentStep, page, kind.form, params);
    } else if (kind.kind === 'login') {
      if (seen.filter(k => k === 'login').length > 1) {
        throw new StepError('login submit', {
          status: page.status,
          url: page.url,
          detail: 'the login page came back after submitting the credentials (wrong username/password?)',
          body: page.html,
        });
      }
      log(`[headless] login page at ${page.url}: form ${kind.form.method.toUpperCase()} ${kind.form.action}`);
      const params = hiddenFields(kind.form);
      params.set('username', opts.username);
      params.set('password', opts.password);
      const submit = kind.form.buttons.find(b => (b.type || 'submit').toLowerCase() === 'submit');
      if (submit?.name) params.set(submit.name, submit.value ?? '');
      step('login submit (POST username/password, expecting redirects back through authhost to the local callback)');
      page = await agent.submitForm(currentStep, page, kind.form, params);
    } else {
      throw new StepError(`${currentStep}: unexpected page`, {
        status: page.status,
        url: page.url,
        detail: 'neither the consent form (decision=approve button) nor a login form (password input)',
        body: page.html,
      });
    }
  }
}

// ---------------------------------------------------------------------------
// Browser user agent: real headless Chromium through playwright-core

async function authorizeBrowser(authorizationUrl, opts, callback) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`cannot load playwright-core (run: npm ci --prefix tests/e2e): ${e.message}`);
  }
  if (opts.screenshotDir) fs.mkdirSync(opts.screenshotDir, { recursive: true });
  const shot = async (page, name) => {
    if (!opts.screenshotDir) return;
    const file = path.join(opts.screenshotDir, name);
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
      log(`[browser] screenshot ${file}`);
    } catch (e) {
      log(`[browser] screenshot ${file} failed: ${e.message}`);
    }
  };

  step('launch Chromium');
  const browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS });
  const closeBrowser = async () => {
    await Promise.race([browser.close().catch(() => {}), new Promise(r => setTimeout(r, 5000))]);
  };
  cleanups.push(closeBrowser);
  log(`[browser] Chromium ${browser.version()}`);
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const callbackUrl = new URL(callback.redirectUrl);

  let lastDocument; // last main-frame document response that was not a redirect
  page.on('response', response => {
    const request = response.request();
    if (!request.isNavigationRequest() || response.frame() !== page.mainFrame()) return;
    const location = response.headers().location;
    log(`[browser] ${request.method()} ${response.url()} -> ${response.status()}${location ? ` Location: ${location}` : ''}`);
    if (!REDIRECT_STATUSES.has(response.status())) lastDocument = response;
  });
  page.on('requestfailed', request => {
    if (request.isNavigationRequest()) log(`[browser] request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
  });

  const atCallback = () => {
    const u = new URL(page.url());
    return u.origin === callbackUrl.origin && u.pathname === callbackUrl.pathname;
  };
  const documentBody = async () => {
    try {
      if (lastDocument) return await lastDocument.text();
    } catch {
      // fall through
    }
    try {
      return await page.content();
    } catch {
      return '';
    }
  };
  // Resolves with the next final (non-redirect) main-frame document response.
  const nextDocument = () =>
    page.waitForResponse(
      r => r.request().isNavigationRequest() && r.frame() === page.mainFrame() && !REDIRECT_STATUSES.has(r.status()),
      { timeout: STEP_TIMEOUT_MS },
    );

  try {
    step('authorization request (open authorization URL in Chromium, expecting the consent page)');
    await page.goto(authorizationUrl.href, { waitUntil: 'load' });
    const seen = [];
    for (let i = 0; !atCallback() && !callback.hasReceived(); i++) {
      if (i >= MAX_PAGES) throw new Error(`gave up after ${MAX_PAGES} pages without reaching the callback (pages: ${seen.join(' → ')})`);
      const status = lastDocument?.status();
      if (status === undefined || status >= 400) {
        throw new StepError(currentStep, { status, url: page.url(), body: await documentBody() });
      }
      const approve = page.locator('button[name="decision"][value="approve"]');
      const password = page.locator('input[name="password"]');
      if ((await approve.count()) > 0) {
        seen.push('consent');
        await shot(page, 'consent.png');
        if (seen.filter(k => k === 'consent').length > 1) {
          throw new StepError('consent page', { status, url: page.url(), detail: 'consent page shown a second time', body: await documentBody() });
        }
        log(`[browser] consent page at ${page.url()}`);
        step('consent submit (click "Approve", expecting a redirect to the identity provider login page)');
        const next = nextDocument();
        await page.getByRole('button', { name: 'Approve', exact: true }).click();
        await next;
        await page.waitForLoadState('load');
      } else if ((await password.count()) > 0) {
        seen.push('login');
        await shot(page, seen.filter(k => k === 'login').length > 1 ? 'login-again.png' : 'login.png');
        if (seen.filter(k => k === 'login').length > 1) {
          throw new StepError('login submit', {
            status,
            url: page.url(),
            detail: 'the login page came back after submitting the credentials (wrong username/password?)',
            body: await documentBody(),
          });
        }
        log(`[browser] login page at ${page.url()}`);
        step('login submit (fill username/password, click "Sign in", expecting redirects back to the local callback)');
        await page.locator('input[name="username"]').fill(opts.username);
        await password.fill(opts.password);
        const next = nextDocument();
        await page.getByRole('button', { name: 'Sign in', exact: true }).click();
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
    const status = lastDocument?.status();
    if (atCallback() && status !== undefined && status >= 400) {
      throw new StepError('local callback', { status, url: page.url(), body: await documentBody() });
    }
  } catch (e) {
    await shot(page, 'failure.png');
    if (e instanceof StepError) throw e;
    throw new StepError(currentStep, {
      status: lastDocument?.status(),
      url: page.url(),
      detail: e.message.split('\n')[0],
      body: await documentBody(),
    });
  } finally {
    await closeBrowser();
  }
}

// ---------------------------------------------------------------------------
// Main flow

const issuersMatch = (a, b) => {
  const norm = s => {
    try {
      return new URL(s).href.replace(/\/$/, '');
    } catch {
      return String(s).replace(/\/$/, '');
    }
  };
  return norm(a) === norm(b);
};

const sleep = ms => new Promise(r => setTimeout(r, ms));

/** An error's message plus what the SDK/undici keep elsewhere: HTTP status, OAuth error code, cause. */
function describe(e) {
  let text = e?.message ?? String(e);
  if (typeof e?.code === 'number' && e.code > 0 && !text.includes(`HTTP ${e.code}`)) text = `HTTP ${e.code}: ${text}`;
  if (typeof e?.errorCode === 'string' && !text.includes(e.errorCode)) text = `${e.errorCode}: ${text}`;
  for (let c = e?.cause, depth = 0; c && depth < 3; c = c.cause, depth++) {
    text += ` (cause: ${c.code ? `${c.code} ` : ''}${c.message ?? c})`;
  }
  return text;
}

function toolText(result) {
  const content = Array.isArray(result?.content) ? result.content : [];
  return content
    .filter(c => c.type === 'text')
    .map(c => c.text)
    .join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  let Client, StreamableHTTPClientTransport, UnauthorizedError;
  try {
    ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
    ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
    ({ UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js'));
  } catch (e) {
    throw new Error(`cannot load @modelcontextprotocol/sdk (run: npm ci --prefix tests/e2e): ${e.message}`);
  }

  const callback = await startCallbackServer();
  cleanups.push(() => callback.close());
  const provider = new InMemoryOAuthClientProvider(callback.redirectUrl);
  const newClient = () => {
    const client = new Client({ name: 'authhost-e2e-client', version: '0.0.0' }, { capabilities: {} });
    client.onerror = e => log(`MCP client error (${currentStep}): ${e?.message ?? e}`);
    return client;
  };

  // 1. Unauthenticated connect: the SDK gets a 401, discovers, registers and asks
  //    us to send the user to the authorization URL.
  step('connect without a token (expecting 401 → discovery → registration → authorization redirect)');
  let client = newClient();
  let transport = new StreamableHTTPClientTransport(opts.url, { authProvider: provider });
  let connected = false;
  try {
    await client.connect(transport);
    connected = true;
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw new Error(`${currentStep}: ${describe(e)}`);
  }
  if (connected) throw new Error('the MCP server accepted the connection without authorization (expected HTTP 401)');
  if (provider.authorizationUrls.length !== 1) {
    throw new Error(`expected the SDK to start exactly one authorization, got ${provider.authorizationUrls.length}`);
  }
  const registeredClientId = provider.clientInformation()?.client_id;
  const authorizationUrl = provider.authorizationUrls[0];

  // 2. The user agent's part: consent, upstream login, redirect back to us.
  if (opts.mode === 'headless') await authorizeHeadless(authorizationUrl, opts, callback.redirectUrl);
  else await authorizeBrowser(authorizationUrl, opts, callback);

  step('wait for the redirect to the local callback');
  const params = await Promise.race([
    callback.callback,
    sleep(STEP_TIMEOUT_MS).then(() => {
      throw new Error('the authorization flow finished but no redirect reached the local callback');
    }),
  ]);
  if (params.error) {
    throw new Error(`authorization failed at the local callback: error=${params.error}${params.error_description ? ` (${params.error_description})` : ''}`);
  }
  if (!params.code) throw new Error('the redirect to the local callback has no code');
  if (params.state !== provider.expectedState) {
    throw new Error(`state mismatch at the local callback: sent ${provider.expectedState}, got ${params.state}`);
  }
  if (!params.iss) throw new Error('the redirect to the local callback has no iss parameter (RFC 9207)');
  const expectedIssuer = provider.clientInformation()?.issuer;
  if (expectedIssuer && !issuersMatch(params.iss, expectedIssuer)) {
    throw new Error(`iss mismatch at the local callback: expected ${expectedIssuer}, got ${params.iss}`);
  }

  // 3. Code exchange, then a fresh transport with the same provider.
  step('token exchange (transport.finishAuth)');
  await transport.finishAuth(params.code);
  await client.close().catch(() => {});

  step('connect with the access token');
  client = newClient();
  transport = new StreamableHTTPClientTransport(opts.url, { authProvider: provider });
  cleanups.push(() => client.close().catch(() => {}));
  await client.connect(transport);
  log(`connected; server ${JSON.stringify(client.getServerVersion())}, protocol ${transport.protocolVersion}, session ${transport.sessionId ?? '(none)'}`);

  const callTool = async () => {
    const result = await client.callTool({ name: opts.tool, arguments: {} });
    const text = toolText(result);
    if (result.isError) throw new Error(`tool ${opts.tool} returned an error: ${text}`);
    log(`tool ${opts.tool} → ${JSON.stringify(text)}`);
    return text;
  };
  step(`call tool ${opts.tool}`);
  const first = await callTool();

  // 4. Let the access token expire; the next call gets a 401 and the SDK refreshes.
  const lastSave = provider.tokenSaves.at(-1);
  const expiresIn = lastSave?.expires_in;
  let waited = false;
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn <= 120) {
    const waitMs = Math.max(0, lastSave.at + expiresIn * 1000 + 1500 - Date.now());
    step(`wait ${(waitMs / 1000).toFixed(1)} s for the access token to expire (expires_in ${expiresIn})`);
    await sleep(waitMs);
    waited = true;
  } else {
    log(`not waiting for expiry (expires_in ${expiresIn === undefined ? 'missing' : expiresIn})`);
  }
  const tokenBefore = provider.tokens()?.access_token;
  const savesBefore = provider.tokenSaves.length;
  const redirectsBefore = provider.authorizationUrls.length;
  const afterExpiry = [];
  for (let i = 0; i < opts.callsAfterExpiry; i++) {
    step(`call tool ${opts.tool} after expiry (${i + 1}/${opts.callsAfterExpiry})`);
    try {
      afterExpiry.push(await callTool());
    } catch (e) {
      if (provider.authorizationUrls.length > redirectsBefore) {
        throw new Error(`${currentStep}: the SDK started a new interactive authorization instead of refreshing the token (${describe(e)})`);
      }
      throw new Error(`${currentStep}: ${describe(e)}`);
    }
  }
  const refreshed = provider.tokenSaves.slice(savesBefore).some(s => s.access_token !== tokenBefore);

  step('done');
  return {
    ok: true,
    mode: opts.mode,
    first,
    after_expiry: afterExpiry,
    refreshed,
    waited,
    registered_client_id: registeredClientId,
    token_saves: provider.tokenSaves.length,
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
setTimeout(() => {
  log(`global timeout (${argTimeout} s) during step: ${currentStep}`);
  // Playwright kills the browsers it launched when the process exits.
  finish({ ok: false, error: `global timeout after ${argTimeout} s during step: ${currentStep}` }, 1);
}, argTimeout * 1000);

process.on('unhandledRejection', e => log(`unhandled rejection: ${e?.stack ?? e}`));

main().then(
  async result => {
    await runCleanups();
    finish(result, 0);
  },
  async error => {
    log(`FAILED: ${error?.stack ?? error}`);
    await runCleanups();
    let message = describe(error);
    if (!(error instanceof StepError) && currentStep !== 'start' && !message.startsWith(currentStep)) {
      message = `${currentStep}: ${message}`;
    }
    finish({ ok: false, error: message }, 1);
  },
);
