// A web-based MCP client: the official MCP TypeScript SDK running in a browser page,
// bundled by build.mjs into dist/app.js. The same page is the start page (/) and the
// OAuth redirect_uri (/callback.html).
//
// Start page, /?mcp=<MCP URL>:
//   Client.connect(StreamableHTTPClientTransport) → 401 → the SDK reads WWW-Authenticate
//   (cross-origin, so it must be exposed by CORS) → protected resource metadata
//   (RFC 9728) → authorization server metadata (RFC 8414) → dynamic client registration
//   → PKCE → provider.redirectToAuthorization(): a top-level navigation to /authorize.
// Callback page, /callback.html?code=…&state=…&iss=…:
//   checks state and iss, auth(provider, {serverUrl, authorizationCode}) exchanges the
//   code, then a new Client + StreamableHTTPClientTransport lists the tools and calls
//   `whoami`.
//
// Everything that must survive the navigation (client information, PKCE verifier,
// state, discovery state, tokens, the request trace) lives in sessionStorage. The
// outcome is published as window.__result (and #result, document.title) for the
// test driver: {ok: true, whoami, tools, ...} or {ok: false, error, step}.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const PREFIX = 'authhost-browser-client:';
const CALLBACK_PATH = '/callback.html';

const store = {
  get(name) {
    const raw = sessionStorage.getItem(PREFIX + name);
    return raw === null ? undefined : JSON.parse(raw);
  },
  set(name, value) {
    if (value === undefined) sessionStorage.removeItem(PREFIX + name);
    else sessionStorage.setItem(PREFIX + name, JSON.stringify(value));
  },
  clear() {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
  },
};

let currentStep = 'load';
function step(name) {
  currentStep = name;
  log(`step: ${name}`);
  setStatus(name);
}

function log(message) {
  const line = `[${new Date().toISOString().slice(11, 23)}] ${message}`;
  console.log(`[browser-client] ${message}`);
  const el = document.getElementById('log');
  if (el) el.textContent += line + '\n';
}

function setStatus(text) {
  const el = document.getElementById('status');
  if (el) el.textContent = text;
}

function publish(result) {
  window.__result = result;
  const el = document.getElementById('result');
  if (el) el.textContent = JSON.stringify(result, null, 2);
  document.title = result.ok ? 'authhost browser client: ok' : 'authhost browser client: failed';
  setStatus(result.ok ? 'done' : `failed: ${result.error}`);
}

const randomToken = (bytes = 24) => {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...buf)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

const short = token => (typeof token === 'string' ? `${token.slice(0, 6)}…(${token.length})` : String(token));

/** An OAuthClientProvider whose whole state lives in this tab's sessionStorage. */
class SessionStorageOAuthClientProvider {
  get redirectUrl() {
    return new URL(CALLBACK_PATH, window.location.origin).href;
  }

  get clientMetadata() {
    return {
      client_name: 'authhost browser client (e2e)',
      client_uri: window.location.origin,
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  // No clientMetadataUrl: the SDK then uses dynamic client registration.

  state() {
    const state = randomToken();
    store.set('state', state);
    return state;
  }

  clientInformation() {
    return store.get('client');
  }

  saveClientInformation(info) {
    log(`saveClientInformation: client_id=${info.client_id}`);
    store.set('client', info);
  }

  tokens() {
    return store.get('tokens');
  }

  saveTokens(tokens) {
    // Stored unchanged: the SDK stamps an `issuer` property that it reads back.
    log(`saveTokens: access_token=${short(tokens.access_token)} expires_in=${tokens.expires_in} refresh_token=${tokens.refresh_token ? 'yes' : 'no'}`);
    store.set('tokens', tokens);
    store.set('token_saves', (store.get('token_saves') ?? 0) + 1);
  }

  redirectToAuthorization(authorizationUrl) {
    log(`redirectToAuthorization: ${authorizationUrl.href}`);
    store.set('authorization_url', authorizationUrl.href);
    setStatus('redirecting to the authorization server');
    window.location.assign(authorizationUrl.href);
  }

  saveCodeVerifier(codeVerifier) {
    store.set('code_verifier', codeVerifier);
  }

  codeVerifier() {
    const verifier = store.get('code_verifier');
    if (!verifier) throw new Error('no PKCE code verifier in sessionStorage');
    return verifier;
  }

  discoveryState() {
    return store.get('discovery');
  }

  saveDiscoveryState(state) {
    store.set('discovery', state);
  }

  invalidateCredentials(scope) {
    log(`invalidateCredentials(${scope})`);
    if (scope === 'all' || scope === 'client') store.set('client', undefined);
    if (scope === 'all' || scope === 'tokens') store.set('tokens', undefined);
    if (scope === 'all' || scope === 'verifier') store.set('code_verifier', undefined);
    if (scope === 'all' || scope === 'discovery') store.set('discovery', undefined);
  }
}

/**
 * fetch as the SDK's fetchFn, recording each request and what the page's script could
 * read of the response: a cross-origin response only shows CORS-exposed headers.
 */
async function tracedFetch(input, init) {
  const request = new Request(input, init);
  const entry = { method: request.method, url: request.url, step: currentStep };
  try {
    const response = await fetch(input, init);
    entry.status = response.status;
    entry.www_authenticate = response.headers.get('www-authenticate');
    log(`fetch ${entry.method} ${entry.url} -> ${entry.status}${entry.www_authenticate ? ` (WWW-Authenticate: ${entry.www_authenticate})` : ''}`);
    return response;
  } catch (e) {
    // A CORS rejection shows up here as a TypeError ("Failed to fetch").
    entry.error = `${e?.name}: ${e?.message}`;
    log(`fetch ${entry.method} ${entry.url} failed: ${entry.error}`);
    throw e;
  } finally {
    store.set('trace', [...(store.get('trace') ?? []), entry]);
  }
}

function describe(e) {
  let text = e?.message ?? String(e);
  if (e?.name && e.name !== 'Error' && !text.startsWith(e.name)) text = `${e.name}: ${text}`;
  if (typeof e?.code === 'number' && e.code > 0 && !text.includes(`HTTP ${e.code}`)) text = `HTTP ${e.code}: ${text}`;
  if (typeof e?.errorCode === 'string' && !text.includes(e.errorCode)) text = `${e.errorCode}: ${text}`;
  for (let c = e?.cause, depth = 0; c && depth < 3; c = c.cause, depth++) text += ` (cause: ${c.message ?? c})`;
  return text;
}

const sameUrl = (a, b) => {
  const norm = s => {
    try {
      return new URL(s).href.replace(/\/$/, '');
    } catch {
      return String(s).replace(/\/$/, '');
    }
  };
  return norm(a) === norm(b);
};

function toolText(result) {
  const content = Array.isArray(result?.content) ? result.content : [];
  return content
    .filter(c => c.type === 'text')
    .map(c => c.text)
    .join('\n');
}

function newClient() {
  const client = new Client({ name: 'authhost-browser-client', version: '0.0.0' }, { capabilities: {} });
  client.onerror = e => log(`MCP client error (${currentStep}): ${describe(e)}`);
  return client;
}

async function start(provider) {
  const params = new URLSearchParams(window.location.search);
  const mcp = params.get('mcp');
  if (!mcp) throw new Error('missing ?mcp=<MCP server URL> in the start page URL');
  const serverUrl = new URL(mcp);
  store.clear();
  store.set('server_url', serverUrl.href);

  step('connect without a token (expecting 401 → discovery → registration → redirect to /authorize)');
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: tracedFetch });
  try {
    await client.connect(transport);
  } catch (e) {
    if (e instanceof UnauthorizedError && store.get('authorization_url')) {
      // The SDK has called redirectToAuthorization(): the page is navigating away.
      log('the SDK started the authorization; navigating');
      return;
    }
    throw e;
  }
  throw new Error('the MCP server accepted the connection without authorization (expected HTTP 401)');
}

async function callback(provider) {
  const params = new URLSearchParams(window.location.search);
  const serverUrl = store.get('server_url');
  if (!serverUrl) throw new Error('no MCP server URL in sessionStorage at the callback (sessionStorage lost across the navigation?)');

  step('check the authorization response (code, state, iss)');
  if (params.get('error')) {
    throw new Error(`authorization failed: error=${params.get('error')}${params.get('error_description') ? ` (${params.get('error_description')})` : ''}`);
  }
  const code = params.get('code');
  if (!code) throw new Error('the redirect to the callback has no code');
  const expectedState = store.get('state');
  if (params.get('state') !== expectedState) throw new Error(`state mismatch: sent ${expectedState}, got ${params.get('state')}`);
  const iss = params.get('iss');
  if (!iss) throw new Error('the redirect to the callback has no iss parameter (RFC 9207)');
  const expectedIssuer = provider.clientInformation()?.issuer;
  if (expectedIssuer && !sameUrl(iss, expectedIssuer)) throw new Error(`iss mismatch: expected ${expectedIssuer}, got ${iss}`);
  // A real app keeps the code out of its history.
  window.history.replaceState(null, '', CALLBACK_PATH);

  step('token exchange (auth(provider, {serverUrl, authorizationCode}))');
  const outcome = await auth(provider, { serverUrl: new URL(serverUrl), authorizationCode: code, fetchFn: tracedFetch });
  if (outcome !== 'AUTHORIZED') throw new Error(`auth() returned ${outcome}, expected AUTHORIZED`);
  if (!provider.tokens()?.access_token) throw new Error('auth() returned AUTHORIZED but no tokens were saved');

  step('connect with the access token');
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: tracedFetch });
  await client.connect(transport);
  log(`connected to ${JSON.stringify(client.getServerVersion())}, protocol ${transport.protocolVersion ?? '?'}`);

  step('list tools');
  const { tools } = await client.listTools();
  const toolNames = tools.map(t => t.name);
  log(`tools: ${toolNames.join(', ')}`);

  step('call tool whoami');
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const text = toolText(result);
  if (result.isError) throw new Error(`tool whoami returned an error: ${text}`);
  log(`whoami → ${text}`);
  let whoami = text;
  try {
    whoami = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  await client.close().catch(() => {});

  const trace = store.get('trace') ?? [];
  const challenge = trace.find(t => t.status === 401);
  return {
    ok: true,
    whoami,
    tools: toolNames,
    page_origin: window.location.origin,
    server: client.getServerVersion() ?? null,
    registered_client_id: provider.clientInformation()?.client_id,
    issuer: iss,
    token_saves: store.get('token_saves') ?? 0,
    // The 401's WWW-Authenticate as the page's script saw it (null if CORS hid it).
    www_authenticate: challenge ? challenge.www_authenticate : null,
    trace,
  };
}

async function main() {
  const provider = new SessionStorageOAuthClientProvider();
  try {
    if (window.location.pathname === CALLBACK_PATH) {
      publish(await callback(provider));
    } else {
      await start(provider);
    }
  } catch (e) {
    log(`FAILED during ${currentStep}: ${e?.stack ?? e}`);
    publish({ ok: false, step: currentStep, error: `${currentStep}: ${describe(e)}`, trace: store.get('trace') ?? [] });
  }
}

main();
