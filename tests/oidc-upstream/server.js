// Test-only OpenID Provider for authhost integration tests.
//
//   node tests/oidc-upstream/server.js [CONFIG_JSON_PATH]
//
// Serves one root issuer (http://127.0.0.1:PORT) and one Keycloak-shaped
// issuer per realm (http://127.0.0.1:PORT/realms/<realm>) on a single port.
// When ready, prints exactly one JSON line to stdout; everything else goes to
// stderr. Exits when stdin closes, and on SIGTERM/SIGINT/SIGHUP.
// See README.md for the config format and the login flow.

import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

// ---------------------------------------------------------------------------
// stdout discipline: only the ready line may go to stdout. oidc-provider
// prints notices with console.info, so route every console method to stderr
// before the library is even loaded.
// ---------------------------------------------------------------------------
const writeStdout = process.stdout.write.bind(process.stdout);
for (const method of ['log', 'info', 'debug', 'trace', 'dir', 'table']) {
  // eslint-disable-next-line no-console
  console[method] = console.error.bind(console);
}
process.stdout.write = (chunk, encoding, cb) => process.stderr.write(chunk, encoding, cb);

const { default: Provider, errors } = await import('oidc-provider');

const QUIET = Boolean(process.env.UPSTREAM_QUIET);
const log = (...args) => {
  if (!QUIET) console.error('[oidc-upstream]', ...args);
};

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------
const DEFAULT_CLIENTS = [
  {
    client_id: 'authhost',
    client_secret: 'authhost-secret',
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

const DEFAULT_USERS = [
  {
    sub: 'alice-sub',
    username: 'alice',
    password: 'alice-password',
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Example',
    groups: ['engineering', 'admins'],
    realm_roles: ['admin'],
    client_roles: {},
  },
  {
    sub: 'bob-sub',
    username: 'bob',
    password: 'bob-password',
    email: 'bob@example.org',
    email_verified: false,
    name: 'Bob Example',
    groups: ['sales'],
    realm_roles: [],
    client_roles: {},
  },
];

function fail(message) {
  console.error(`[oidc-upstream] fatal: ${message}`);
  process.exit(2);
}

function loadConfig() {
  const path = process.argv[2];
  let config = {};
  if (path) {
    try {
      config = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      fail(`cannot read config ${path}: ${err.message}`);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      fail('config must be a JSON object');
    }
  }

  let clients = Array.isArray(config.clients) ? [...config.clients] : [];
  if (process.env.UPSTREAM_CLIENTS) {
    let envClients;
    try {
      envClients = JSON.parse(process.env.UPSTREAM_CLIENTS);
    } catch (err) {
      fail(`UPSTREAM_CLIENTS is not valid JSON: ${err.message}`);
    }
    if (!Array.isArray(envClients)) fail('UPSTREAM_CLIENTS must be a JSON array');
    // env clients win over config clients with the same client_id
    const ids = new Set(envClients.map((c) => c?.client_id));
    clients = [...clients.filter((c) => !ids.has(c?.client_id)), ...envClients];
  }
  if (clients.length === 0) clients = DEFAULT_CLIENTS;

  const users = Array.isArray(config.users) && config.users.length ? config.users : DEFAULT_USERS;
  const realms = Array.isArray(config.realms) ? config.realms : ['test'];
  for (const realm of realms) {
    if (typeof realm !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(realm)) {
      fail(`invalid realm name ${JSON.stringify(realm)}`);
    }
    if (realm === 'root') fail('realm name "root" is reserved for the root issuer');
  }
  if (new Set(realms).size !== realms.length) fail('duplicate realm names');

  const positive = (value, fallback, name) => {
    if (value === undefined || value === null) return fallback;
    if (!Number.isInteger(value) || value <= 0) fail(`${name} must be a positive integer`);
    return value;
  };

  return {
    clients: clients.map(normalizeClient),
    users: users.map(normalizeUser),
    realms,
    accessTokenTtl: positive(config.access_token_ttl, 3600, 'access_token_ttl'),
    refreshTokenTtl: positive(config.refresh_token_ttl, 14 * 24 * 3600, 'refresh_token_ttl'),
    rotateRefreshTokens: config.rotate_refresh_tokens === undefined
      ? true : Boolean(config.rotate_refresh_tokens),
    // Resource servers (RFC 8707) this provider issues JWT access tokens for, with
    // `aud` = the resource: { "resource": URL, "scope": "mcp" }. With any, clients may
    // also register themselves (RFC 7591), as MCP clients do.
    resourceServers: Array.isArray(config.resource_servers) ? config.resource_servers : [],
  };
}

function normalizeClient(input) {
  if (!input || typeof input !== 'object' || typeof input.client_id !== 'string' || !input.client_id) {
    fail(`every client needs a client_id: ${JSON.stringify(input)}`);
  }
  if (!Array.isArray(input.redirect_uris) || input.redirect_uris.length === 0) {
    fail(`client ${input.client_id} needs redirect_uris`);
  }
  const client = { ...input };
  client.token_endpoint_auth_method ||= client.client_secret ? 'client_secret_basic' : 'none';
  const method = client.token_endpoint_auth_method;
  if (!['client_secret_basic', 'client_secret_post', 'none'].includes(method)) {
    fail(`client ${client.client_id}: unsupported token_endpoint_auth_method ${method}`);
  }
  if (method === 'none') {
    delete client.client_secret;
  } else if (typeof client.client_secret !== 'string' || !client.client_secret) {
    fail(`client ${client.client_id}: ${method} needs a client_secret`);
  }
  client.grant_types ||= ['authorization_code', 'refresh_token'];
  client.response_types ||= ['code'];
  return client;
}

function normalizeUser(input) {
  if (!input || typeof input !== 'object' || !input.username || !input.password) {
    fail(`every user needs username and password: ${JSON.stringify(input)}`);
  }
  return {
    sub: input.sub || `${input.username}-sub`,
    username: String(input.username),
    password: String(input.password),
    email: input.email,
    email_verified: input.email_verified === undefined ? false : Boolean(input.email_verified),
    name: input.name || input.username,
    given_name: input.given_name,
    family_name: input.family_name,
    groups: Array.isArray(input.groups) ? input.groups : [],
    realm_roles: Array.isArray(input.realm_roles) ? input.realm_roles : [],
    client_roles: input.client_roles && typeof input.client_roles === 'object' ? input.client_roles : {},
  };
}

const config = loadConfig();
const usersBySub = new Map(config.users.map((u) => [u.sub, u]));

function findUserByLogin(login) {
  const needle = String(login || '').trim().toLowerCase();
  if (!needle) return undefined;
  return config.users.find((u) => u.username.toLowerCase() === needle)
    || config.users.find((u) => u.email && u.email.toLowerCase() === needle);
}

function passwordMatches(user, password) {
  const a = Buffer.from(user.password, 'utf8');
  const b = Buffer.from(String(password ?? ''), 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

const allStores = []; // revokeAccount functions of every issuer's store

// ---------------------------------------------------------------------------
// Storage: a small per-issuer in-memory adapter (no LRU eviction, so long
// test runs never lose sessions/grants; isolated between issuers).
// ---------------------------------------------------------------------------
function createStore() {
  const entries = new Map(); // key -> { payload, expiresAt }
  // Test control: end every session, grant and token of an account (an upstream
  // session revoked by an administrator).
  allStores.push((accountId) => {
    for (const [key, entry] of entries) {
      if (entry.payload?.accountId === accountId) entries.delete(key);
    }
  });
  const byGrant = new Map(); // grantId -> Set<key>
  const sessionUids = new Map(); // uid -> session id
  const userCodes = new Map(); // userCode -> id
  const now = () => Date.now();

  const get = (key) => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    return entry.payload;
  };

  const sweep = setInterval(() => {
    const t = now();
    for (const [key, entry] of entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= t) entries.delete(key);
    }
  }, 60_000);
  sweep.unref();

  const grantable = new Set([
    'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
    'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
  ]);

  return (model) => ({
    key(id) {
      return `${model}:${id}`;
    },
    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const expiresAt = typeof expiresIn === 'number' ? now() + expiresIn * 1000 : undefined;
      entries.set(key, { payload: structuredClone(payload), expiresAt });
      if (model === 'Session' && payload.uid) sessionUids.set(payload.uid, id);
      if (payload.userCode) userCodes.set(payload.userCode, id);
      if (grantable.has(model) && payload.grantId) {
        if (!byGrant.has(payload.grantId)) byGrant.set(payload.grantId, new Set());
        byGrant.get(payload.grantId).add(key);
      }
    },
    async find(id) {
      const payload = get(this.key(id));
      return payload === undefined ? undefined : structuredClone(payload);
    },
    async findByUid(uid) {
      const id = sessionUids.get(uid);
      return id === undefined ? undefined : this.find(id);
    },
    async findByUserCode(userCode) {
      const id = userCodes.get(userCode);
      return id === undefined ? undefined : this.find(id);
    },
    async consume(id) {
      const entry = entries.get(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(now() / 1000);
    },
    async destroy(id) {
      entries.delete(this.key(id));
    },
    async revokeByGrantId(grantId) {
      const keys = byGrant.get(grantId);
      if (keys) {
        for (const key of keys) entries.delete(key);
        byGrant.delete(grantId);
      }
    },
  });
}

// ---------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------
function splitName(name) {
  const parts = String(name || '').trim().split(/\s+/);
  if (parts.length < 2) return { given_name: parts[0] || undefined, family_name: undefined };
  return { given_name: parts.slice(0, -1).join(' '), family_name: parts[parts.length - 1] };
}

function accountClaims(user) {
  const split = splitName(user.name);
  const resourceAccess = {};
  for (const [clientId, roles] of Object.entries(user.client_roles)) {
    if (Array.isArray(roles) && roles.length) resourceAccess[clientId] = { roles: [...roles] };
  }
  return {
    sub: user.sub,
    preferred_username: user.username,
    name: user.name,
    given_name: user.given_name ?? split.given_name,
    family_name: user.family_name ?? split.family_name,
    email: user.email,
    email_verified: user.email_verified,
    groups: [...user.groups],
    realm_access: { roles: [...user.realm_roles] },
    resource_access: resourceAccess,
  };
}

async function findAccount(_ctx, sub) {
  const user = usersBySub.get(sub);
  if (!user) return undefined;
  return {
    accountId: user.sub,
    async claims() {
      return accountClaims(user);
    },
  };
}

function claimsConfig(isRealm) {
  const roleClaims = ['realm_access', 'resource_access'];
  return {
    // realm issuers always carry Keycloak's role claims; the root issuer only
    // with scope "roles"
    openid: isRealm ? ['sub', ...roleClaims] : ['sub'],
    profile: ['preferred_username', 'name', 'given_name', 'family_name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    roles: roleClaims,
    sid: null,
    auth_time: null,
    acr: null,
    iss: null,
  };
}

// ---------------------------------------------------------------------------
// Redirect URI matching: a registered http loopback redirect URI matches the
// same URI on any port (RFC 8252 7.3 style), for web clients too.
// ---------------------------------------------------------------------------
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function withoutLoopbackPort(uri) {
  let url;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' || !LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  url.port = '';
  return url.href;
}

function loopbackAnyPortAllowed(value, registered) {
  const candidate = withoutLoopbackPort(value);
  if (candidate === undefined) return false;
  return (registered || []).some((uri) => withoutLoopbackPort(uri) === candidate);
}

// ---------------------------------------------------------------------------
// Providers
// ---------------------------------------------------------------------------
const KEYCLOAK_ROUTES = {
  authorization: '/protocol/openid-connect/auth',
  token: '/protocol/openid-connect/token',
  userinfo: '/protocol/openid-connect/userinfo',
  jwks: '/protocol/openid-connect/certs',
  revocation: '/protocol/openid-connect/revoke',
  introspection: '/protocol/openid-connect/token/introspect',
  end_session: '/protocol/openid-connect/logout',
  pushed_authorization_request: '/protocol/openid-connect/ext/par/request',
};

function signingJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: randomBytes(8).toString('hex'),
    alg: 'RS256',
    use: 'sig',
  };
}

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}label{display:block;margin:.6em 0}
input{display:block;width:100%;padding:.3em}.error{color:#b00020}</style></head>
<body>
${body}
</body>
</html>
`;
}

// JWT access tokens for the configured resource servers; any other resource is refused.
function resourceIndicators() {
  if (config.resourceServers.length === 0) return { enabled: false };
  // `path` matches that path on any loopback origin (the tests' servers pick ports).
  const onLoopback = (indicator, path) => {
    try {
      const url = new URL(indicator);
      return ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && url.pathname === path;
    } catch {
      return false;
    }
  };
  const known = (indicator) => config.resourceServers.find(
    (r) => r.resource === indicator || (r.path && onLoopback(indicator, r.path)),
  );
  return {
    enabled: true,
    defaultResource: (_ctx, _client, oneOf) => oneOf ?? undefined,
    useGrantedResource: () => true,
    getResourceServerInfo: (_ctx, indicator) => {
      const server = known(indicator);
      if (!server) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
      const info = {
        scope: server.scope || 'mcp',
        audience: indicator,
        accessTokenTTL: config.accessTokenTtl,
        accessTokenFormat: server.format === 'opaque' ? 'opaque' : 'jwt',
      };
      if (info.accessTokenFormat === 'jwt') info.jwt = { sign: { alg: 'RS256' } };
      return info;
    },
  };
}

function createIssuer(name, issuerUrl, prefix) {
  const isRealm = name !== 'root';
  const safeName = name.replace(/[^A-Za-z0-9_-]/g, '_');
  const cookieOptions = { httpOnly: true, sameSite: 'lax', signed: true };

  const provider = new Provider(issuerUrl, {
    adapter: createStore(),
    clients: config.clients.map((c) => structuredClone(c)),
    findAccount,
    claims: claimsConfig(isRealm),
    scopes: [
      'openid', 'offline_access', 'profile', 'email', 'groups', 'roles',
      // Resource servers' scopes, which self-registering clients name.
      ...new Set(config.resourceServers.flatMap((r) => (r.scope || 'mcp').split(' '))),
    ],
    conformIdTokenClaims: false,
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    responseTypes: ['code'],
    clientBasedCORS: () => true,
    cookies: {
      names: {
        session: `oidcup_${safeName}_session`,
        interaction: `oidcup_${safeName}_interaction`,
        resume: `oidcup_${safeName}_resume`,
      },
      keys: [randomBytes(32).toString('hex')],
      long: { ...cookieOptions },
      short: { ...cookieOptions },
    },
    features: {
      devInteractions: { enabled: false },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none'
          || token.clientId === client.clientId,
      },
      resourceIndicators: resourceIndicators(),
      registration: { enabled: config.resourceServers.length > 0 },
      rpInitiatedLogout: { enabled: true },
      userinfo: { enabled: true },
    },
    interactions: {
      url: (_ctx, interaction) => `${prefix}/interaction/${interaction.uid}`,
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: config.rotateRefreshTokens,
    pkce: {
      required: (_ctx, client) => client.clientAuthMethod === 'none',
    },
    routes: isRealm ? KEYCLOAK_ROUTES : {},
    ttl: {
      AccessToken: config.accessTokenTtl,
      IdToken: config.accessTokenTtl,
      RefreshToken: config.refreshTokenTtl,
      AuthorizationCode: 300,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: Math.max(config.refreshTokenTtl, 14 * 24 * 3600),
      ClientCredentials: config.accessTokenTtl,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    jwks: { keys: [signingJwk()] },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Error</h1>
<p class="error" id="error">${escapeHtml(out.error)}: ${escapeHtml(out.error_description)}</p>`);
    },
  });

  // Accept any port for registered http loopback redirect URIs.
  const { prototype } = provider.Client;
  const originalRedirect = prototype.redirectUriAllowed;
  prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    return originalRedirect.call(this, value) || loopbackAnyPortAllowed(value, this.redirectUris);
  };
  const originalPostLogout = prototype.postLogoutRedirectUriAllowed;
  prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
    return originalPostLogout.call(this, value)
      || loopbackAnyPortAllowed(value, this.postLogoutRedirectUris);
  };

  for (const event of [
    'server_error', 'authorization.error', 'grant.error', 'userinfo.error',
    'introspection.error', 'revocation.error', 'end_session.error', 'jwks.error',
    'discovery.error', 'pushed_authorization_request.error',
  ]) {
    provider.on(event, (...args) => {
      const err = args.find((a) => a instanceof Error);
      const detail = [err?.error_description, err?.error_detail].filter(Boolean).join('; ');
      log(`${name}: ${event}: ${err?.name}: ${err?.message}${detail ? ` (${detail})` : ''}`);
      if (event === 'server_error' && err?.stack) log(err.stack);
    });
  }

  return {
    name, issuerUrl, prefix, provider, callback: provider.callback(),
  };
}

// ---------------------------------------------------------------------------
// Interactions (login form + automatic consent)
// ---------------------------------------------------------------------------
function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
}

function loginPage(issuer, uid, details, { error, username } = {}) {
  const action = `${issuer.prefix}/interaction/${encodeURIComponent(uid)}/login`;
  const prefill = username ?? details.params.login_hint ?? '';
  return page('Sign in', `<h1>Sign in</h1>
<p>Issuer: <code>${escapeHtml(issuer.issuerUrl)}</code><br>Client: <code id="client-id">${escapeHtml(details.params.client_id)}</code></p>
${error ? `<p class="error" id="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="off">
  <label>Username <input id="username" type="text" name="username" value="${escapeHtml(prefill)}" autofocus></label>
  <label>Password <input id="password" type="password" name="password"></label>
  <button id="sign-in" type="submit">Sign in</button>
</form>`);
}

function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function grantEverything(provider, details, accountId) {
  const { params } = details;
  let grant;
  if (details.grantId && details.session?.accountId === accountId) {
    grant = await provider.Grant.find(details.grantId);
  }
  grant ||= new provider.Grant({ accountId, clientId: params.client_id });

  if (params.scope) grant.addOIDCScope(params.scope);
  if (params.claims) {
    try {
      const requested = JSON.parse(params.claims);
      const names = [
        ...Object.keys(requested?.id_token || {}),
        ...Object.keys(requested?.userinfo || {}),
      ];
      if (names.length) grant.addOIDCClaims(names);
    } catch {
      // malformed claims parameters are rejected by the authorization endpoint
    }
  }
  const promptDetails = details.prompt?.details || {};
  if (promptDetails.missingOIDCScope) grant.addOIDCScope(promptDetails.missingOIDCScope.join(' '));
  if (promptDetails.missingOIDCClaims) grant.addOIDCClaims(promptDetails.missingOIDCClaims);
  if (promptDetails.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(promptDetails.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return grant.save();
}

async function loadInteraction(issuer, req, res, uid) {
  try {
    const details = await issuer.provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction cookie does not match the URL');
    return details;
  } catch (err) {
    log(`${issuer.name}: interaction ${uid}: ${err.message}`);
    sendHtml(res, 400, page('Login session expired', `<h1>Login session expired</h1>
<p class="error" id="error">${escapeHtml(err.message)}. Start the sign-in again from the application.</p>`));
    return undefined;
  }
}

async function handleInteraction(issuer, req, res, uid, action) {
  const { provider } = issuer;
  const details = await loadInteraction(issuer, req, res, uid);
  if (!details) return;

  if (action === 'show' && req.method === 'GET') {
    if (details.prompt.name === 'login') {
      sendHtml(res, 200, loginPage(issuer, uid, details));
      return;
    }
    // Already authenticated; only consent is missing: grant it silently.
    const accountId = details.session?.accountId;
    const grantId = await grantEverything(provider, details, accountId);
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  if (action === 'login' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const username = form.get('username') ?? '';
    const user = findUserByLogin(username);
    if (!user || !passwordMatches(user, form.get('password'))) {
      log(`${issuer.name}: failed login for ${JSON.stringify(username)}`);
      sendHtml(res, 200, loginPage(issuer, uid, details, {
        error: 'Invalid username or password.',
        username,
      }));
      return;
    }
    const grantId = await grantEverything(provider, details, user.sub);
    await provider.interactionFinished(req, res, {
      login: { accountId: user.sub, amr: ['pwd'] },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    return;
  }

  res.writeHead(405, { allow: action === 'login' ? 'POST' : 'GET', 'content-type': 'text/plain' });
  res.end('method not allowed\n');
}

// ---------------------------------------------------------------------------
// Test control (what an administrator does at a real IdP), on every issuer:
//   POST /__test/users/<username>/groups  body: JSON array of group names
//   POST /__test/users/<username>/disable the account no longer exists
//   POST /__test/users/<username>/revoke  its sessions, grants and tokens end
// ---------------------------------------------------------------------------
async function handleTestControl(req, res, username, action) {
  const user = config.users.find((u) => u.username === username);
  if (!user) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no such user\n');
    return;
  }
  if (action === 'groups') {
    const groups = JSON.parse(await readBody(req));
    if (!Array.isArray(groups)) throw new Error('groups must be a JSON array');
    user.groups = groups.map(String);
  } else if (action === 'disable') {
    usersBySub.delete(user.sub);
  } else {
    for (const revokeAccount of allStores) revokeAccount(user.sub);
  }
  log(`test control: ${action} ${username}`);
  res.writeHead(204);
  res.end();
}

// ---------------------------------------------------------------------------
// HTTP server
// ---------------------------------------------------------------------------
const HOST = '127.0.0.1';
const requestedPort = process.env.PORT ? Number(process.env.PORT) : 0;
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  fail(`invalid PORT ${process.env.PORT}`);
}

let root;
const realmIssuers = new Map();
const logRequests = Boolean(process.env.UPSTREAM_LOG_REQUESTS);

async function handle(req, res) {
  if (!root) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('starting\n');
    return;
  }
  if (logRequests) log(`${req.method} ${req.url}`);

  const url = new URL(req.url, `http://${HOST}`);
  let issuer = root;
  let rest = url.pathname;
  const realmMatch = /^\/realms\/([^/]+)(\/.*)?$/.exec(url.pathname);
  if (realmMatch && realmIssuers.has(realmMatch[1])) {
    issuer = realmIssuers.get(realmMatch[1]);
    rest = realmMatch[2] || '/';
  }

  const testMatch = /^\/__test\/users\/([^/]+)\/(groups|disable|revoke)$/.exec(url.pathname);
  if (testMatch && req.method === 'POST') {
    await handleTestControl(req, res, decodeURIComponent(testMatch[1]), testMatch[2]);
    return;
  }

  const interactionMatch = /^\/interaction\/([^/]+)(\/login)?\/?$/.exec(rest);
  if (interactionMatch) {
    await handleInteraction(issuer, req, res, decodeURIComponent(interactionMatch[1]), interactionMatch[2] ? 'login' : 'show');
    return;
  }

  if (issuer !== root) {
    // Mount the realm provider under its issuer path (what express'
    // app.use(prefix, ...) would do): strip the prefix and expose it as baseUrl.
    req.url = `${rest}${url.search}`;
    req.baseUrl = issuer.prefix;
  }
  issuer.callback(req, res);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    log(`unhandled error for ${req.method} ${req.url}: ${err.stack || err}`);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    } else {
      res.destroy();
    }
  });
});
server.keepAliveTimeout = 5000;

let shuttingDown = false;
function shutdown(reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`shutting down (${reason})`);
  server.close();
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 50).unref();
  process.exitCode = 0;
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => shutdown(signal));
}

if (!process.env.UPSTREAM_IGNORE_STDIN) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

process.on('unhandledRejection', (err) => log(`unhandled rejection: ${err?.stack || err}`));

server.on('error', (err) => fail(`server error: ${err.message}`));
server.listen(requestedPort, HOST, () => {
  const { port } = server.address();
  const baseUrl = `http://${HOST}:${port}`;

  root = createIssuer('root', baseUrl, '');
  for (const realm of config.realms) {
    const prefix = `/realms/${realm}`;
    realmIssuers.set(realm, createIssuer(realm, `${baseUrl}${prefix}`, prefix));
  }

  const issuers = { root: root.issuerUrl };
  for (const [realm, issuer] of realmIssuers) issuers[realm] = issuer.issuerUrl;

  log(`listening on ${baseUrl}; issuers: ${Object.values(issuers).join(', ')}`);
  log(`clients: ${config.clients.map((c) => `${c.client_id} (${c.token_endpoint_auth_method})`).join(', ')}`);
  log(`users: ${config.users.map((u) => u.username).join(', ')}`);
  writeStdout(`${JSON.stringify({
    ready: true, port, base_url: baseUrl, issuers,
  })}\n`);
});
