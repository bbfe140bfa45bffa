// Self-test for the test OpenID Provider (server.js). Node built-ins only.
//
//   node tests/oidc-upstream/selftest.mjs
//
// Starts server.js as a child process, drives complete headless logins with
// fetch(redirect: 'manual') and a small cookie jar, and checks tokens,
// claims, refresh rotation, revocation, introspection and process lifetime.
// Exit code 0 on success.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const serverPath = join(here, 'server.js');
const tmp = mkdtempSync(join(tmpdir(), 'oidc-upstream-selftest-'));

let checks = 0;
const children = new Set();

function ok(condition, message, extra) {
  if (!condition) {
    const detail = extra === undefined ? '' : `\n  got: ${typeof extra === 'string' ? extra : JSON.stringify(extra)}`;
    throw new Error(`check failed: ${message}${detail}`);
  }
  checks += 1;
  console.log(`  ok - ${message}`);
}

function section(title) {
  console.log(`\n# ${title}`);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function decodeJwt(jwt) {
  const [header, payload] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')),
  };
}

function randomPort() {
  return 20000 + Math.floor(Math.random() * 40000);
}

// ---------------------------------------------------------------------------
// Minimal cookie jar (host-only cookies; honours Path and expiry)
// ---------------------------------------------------------------------------
class CookieJar {
  // ignorePaths: behave like the simplest possible jar (one value per name,
  // every cookie sent on every request) to prove that is good enough too.
  constructor({ ignorePaths = false } = {}) {
    this.ignorePaths = ignorePaths;
    this.cookies = new Map(); // `${name};${path}` -> { name, value, path, expires }
  }

  store(url, response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path;
      let expires;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v;
        if (key === 'expires') expires = Date.parse(v);
        if (key === 'max-age') expires = Date.now() + Number(v) * 1000;
        if (key === 'secure') throw new Error(`cookie ${name} is Secure-only; would break over http`);
      }
      if (!path || !path.startsWith('/')) {
        const p = new URL(url).pathname;
        path = p.slice(0, p.lastIndexOf('/')) || '/';
      }
      if (this.ignorePaths) path = '/';
      const id = `${name};${path}`;
      if (expires !== undefined && expires <= Date.now()) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path, expires });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const now = Date.now();
    const matching = [...this.cookies.values()].filter((c) => (c.expires === undefined || c.expires > now)
      && (pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)));
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  names() {
    return [...this.cookies.values()].map((c) => c.name);
  }
}

async function request(jar, url, init = {}) {
  const headers = new Headers(init.headers || {});
  const cookie = jar?.header(url);
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar?.store(url, res);
  return res;
}

// ---------------------------------------------------------------------------
// Server process helpers
// ---------------------------------------------------------------------------
const serverLogs = [];

function startServer(configObject, env = {}) {
  const args = [serverPath];
  if (configObject !== null) {
    const configPath = join(tmp, `config-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(configPath, JSON.stringify(configObject, null, 2));
    args.push(configPath);
  }
  const child = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PORT: '0', ...env },
  });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  serverLogs.push(() => stderr);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));

  let stdout = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready in time; stderr:\n${stderr}`)), 20000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl !== -1 && !child.readyLine) {
        clearTimeout(timer);
        child.readyLine = stdout.slice(0, nl);
        try {
          resolve(JSON.parse(child.readyLine));
        } catch (err) {
          reject(new Error(`ready line is not JSON: ${child.readyLine}`));
        }
      }
    });
    child.on('exit', () => reject(new Error(`server exited before ready; stderr:\n${stderr}`)));
  });
  return {
    child, ready, exited, stdoutAll: () => stdout, stderrAll: () => stderr,
  };
}

async function discovery(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  ok(res.status === 200, `discovery for ${issuer} returns 200`, res.status);
  return res.json();
}

function pkcePair() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

// Runs authorize -> (interaction -> login -> resume) -> redirect_uri.
// Returns { code, state, iss, callback: URL, steps }.
async function login(jar, disco, {
  clientId, redirectUri, scope = 'openid profile email groups', username, password,
  pkce, expectInteraction = true, extra = {},
}) {
  const state = b64url(randomBytes(12));
  const nonce = b64url(randomBytes(12));
  const authUrl = new URL(disco.authorization_endpoint);
  authUrl.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    ...(pkce ? { code_challenge: pkce.challenge, code_challenge_method: 'S256' } : {}),
    ...extra,
  }).toString();

  let res = await request(jar, authUrl.href);
  ok([302, 303].includes(res.status), `authorize redirects (${res.status})`, await res.text());
  let location = new URL(res.headers.get('location'), authUrl);

  if (expectInteraction) {
    ok(location.pathname.endsWith(`/interaction/${location.pathname.split('/').pop()}`)
      && location.href.startsWith(disco.issuer), `authorize sends the browser to the issuer's interaction page ${location.pathname}`);
    res = await request(jar, location.href);
    const html = await res.text();
    ok(res.status === 200 && /<form[^>]+method="post"/.test(html), 'interaction page shows a login form', res.status);
    ok(html.includes('name="username"') && html.includes('name="password"') && html.includes('>Sign in<'),
      'login form has username, password and a "Sign in" button');
    const action = new URL(/action="([^"]+)"/.exec(html)[1].replace(/&amp;/g, '&'), location);
    ok(action.pathname === `${location.pathname}/login`, `form posts to ${action.pathname}`);

    res = await request(jar, action.href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password }).toString(),
    });
    if (res.status === 200) {
      return { loginPage: await res.text(), status: res.status };
    }
    ok(res.status === 303, 'successful login answers 303', res.status);
    location = new URL(res.headers.get('location'), action);
    ok(location.href.startsWith(disco.authorization_endpoint), `login redirects back to the authorization endpoint (resume) ${location.pathname}`);
    res = await request(jar, location.href);
    if (res.status === 200) {
      // A different user logged in over an existing session: oidc-provider
      // first ends the old session with an auto-submitting form (browsers run
      // it via JS); a headless client submits it itself.
      const html = await res.text();
      const formAction = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
      ok(formAction?.endsWith('/logout/confirm') || formAction?.endsWith('/session/end/confirm'),
        `user switch: resume answers an auto-submit logout form (${formAction})`, html);
      const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      res = await request(jar, formAction, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
      ok(res.status === 303, 'logout confirm redirects back to resume', res.status);
      location = new URL(res.headers.get('location'), formAction);
      res = await request(jar, location.href);
    }
    ok([302, 303].includes(res.status), `resume redirects (${res.status})`, await res.text());
    location = new URL(res.headers.get('location'), location);
  }

  const expectedBase = new URL(redirectUri);
  ok(location.origin === expectedBase.origin && location.pathname === expectedBase.pathname,
    `browser lands on redirect_uri ${location.origin}${location.pathname}`, location.href);
  const params = location.searchParams;
  if (params.get('error')) {
    return {
      error: params.get('error'), error_description: params.get('error_description'), state: params.get('state'), callback: location,
    };
  }
  ok(params.get('state') === state, 'redirect carries the original state');
  ok(params.get('iss') === disco.issuer, `redirect carries iss=${params.get('iss')}`);
  ok(typeof params.get('code') === 'string' && params.get('code').length > 10, 'redirect carries a code');
  return {
    code: params.get('code'), state, nonce, iss: params.get('iss'), callback: location,
  };
}

async function tokenRequest(disco, body, { basic, post } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const form = new URLSearchParams(body);
  if (basic) {
    const [id, secret] = basic;
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  }
  if (post) {
    form.set('client_id', post[0]);
    if (post[1] !== undefined) form.set('client_secret', post[1]);
  }
  const res = await fetch(disco.token_endpoint, { method: 'POST', headers, body: form.toString() });
  return { status: res.status, json: await res.json() };
}

async function userinfo(disco, accessToken) {
  const res = await fetch(disco.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: res.status, json: res.status === 200 ? await res.json() : await res.text() };
}

async function postForm(url, body, basic) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}`;
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(body).toString() });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------
async function main() {
  const callbackPort = randomPort();
  const publicPort = randomPort();
  const config = {
    clients: [
      {
        client_id: 'selftest-confidential',
        client_secret: 'selftest-secret',
        // registered without a port: any loopback port must be accepted
        redirect_uris: ['http://127.0.0.1/callback'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'selftest-public',
        // registered with one random port; another port must work too
        redirect_uris: [`http://127.0.0.1:${publicPort}/cb`],
        token_endpoint_auth_method: 'none',
      },
    ],
    users: [
      {
        sub: 'alice-sub',
        username: 'alice',
        password: 'alice-password',
        email: 'alice@example.com',
        email_verified: true,
        name: 'Alice Example',
        groups: ['engineering', 'admins'],
        realm_roles: ['admin'],
        client_roles: { 'selftest-confidential': ['editor'] },
      },
      {
        sub: 'bob-sub',
        username: 'bob',
        password: 'bob-password',
        email: 'bob@example.org',
        email_verified: false,
        name: 'Bob Example',
        groups: ['sales'],
      },
    ],
    realms: ['test', 'other'],
    access_token_ttl: 600,
  };
  const client = ['selftest-confidential', 'selftest-secret'];
  const redirectUri = `http://127.0.0.1:${callbackPort}/callback`;

  section('start server.js');
  const srv = startServer(config);
  const ready = await srv.ready;
  ok(/^\{"ready":true,"port":\d+,"base_url":"http:\/\/127\.0\.0\.1:\d+","issuers":\{.*\}\}$/.test(srv.child.readyLine),
    `ready line has the documented shape: ${srv.child.readyLine}`);
  ok(ready.base_url === `http://127.0.0.1:${ready.port}`, 'base_url matches port');
  ok(ready.issuers.root === ready.base_url, 'root issuer is the base url');
  ok(ready.issuers.test === `${ready.base_url}/realms/test`, 'realm "test" issuer is /realms/test');
  ok(ready.issuers.other === `${ready.base_url}/realms/other`, 'realm "other" issuer is /realms/other');

  section('discovery');
  const rootDisco = await discovery(ready.issuers.root);
  const disco = await discovery(ready.issuers.test);
  ok(rootDisco.issuer === ready.issuers.root, 'root discovery issuer');
  ok(disco.issuer === ready.issuers.test, 'realm discovery issuer');
  const kc = `${ready.issuers.test}/protocol/openid-connect`;
  ok(disco.authorization_endpoint === `${kc}/auth`, 'realm auth endpoint is Keycloak-shaped');
  ok(disco.token_endpoint === `${kc}/token`, 'realm token endpoint is Keycloak-shaped');
  ok(disco.userinfo_endpoint === `${kc}/userinfo`, 'realm userinfo endpoint is Keycloak-shaped');
  ok(disco.jwks_uri === `${kc}/certs`, 'realm jwks endpoint is Keycloak-shaped');
  ok(disco.revocation_endpoint === `${kc}/revoke`, 'realm revocation endpoint is Keycloak-shaped');
  ok(disco.introspection_endpoint === `${kc}/token/introspect`, 'realm introspection endpoint is Keycloak-shaped');
  ok(disco.code_challenge_methods_supported.includes('S256'), 'S256 PKCE advertised');
  for (const m of ['client_secret_basic', 'client_secret_post', 'none']) {
    ok(disco.token_endpoint_auth_methods_supported.includes(m), `auth method ${m} advertised`);
  }
  for (const s of ['openid', 'profile', 'email', 'groups', 'offline_access', 'roles']) {
    ok(disco.scopes_supported.includes(s), `scope ${s} advertised`);
  }
  const jwks = await (await fetch(disco.jwks_uri)).json();
  ok(jwks.keys.length >= 1 && !('d' in jwks.keys[0]), 'jwks publishes public signing keys only');
  const rootJwks = await (await fetch(rootDisco.jwks_uri)).json();
  ok(rootJwks.keys[0].kid !== jwks.keys[0].kid, 'root and realm issuers use different signing keys');

  section('redirect_uri checks');
  {
    const jar = new CookieJar();
    const bad = new URL(disco.authorization_endpoint);
    bad.search = new URLSearchParams({
      client_id: client[0], response_type: 'code', scope: 'openid', redirect_uri: `http://127.0.0.1:${callbackPort}/evil`,
    });
    const res = await request(jar, bad.href);
    const body = await res.text();
    ok(res.status === 400 && body.includes('redirect_uri'), 'unregistered path is rejected (400, no redirect)', `${res.status} ${body.slice(0, 200)}`);
    bad.searchParams.set('redirect_uri', `http://example.com:${callbackPort}/callback`);
    const res2 = await request(jar, bad.href);
    ok(res2.status === 400, 'non-loopback host is rejected', res2.status);
  }

  section('alice: realm "test", code + PKCE S256, client_secret_basic');
  const jar = new CookieJar();
  const pkce = pkcePair();
  const first = await login(jar, disco, {
    clientId: client[0], redirectUri, username: 'alice', password: 'alice-password', pkce,
    scope: 'openid profile email groups roles',
  });
  ok(jar.names().some((n) => n.includes('session')), 'session cookie was set (not Secure-only)');
  let tok = await tokenRequest(disco, {
    grant_type: 'authorization_code', code: first.code, redirect_uri: redirectUri, code_verifier: pkce.verifier,
  }, { basic: client });
  ok(tok.status === 200, 'code exchange with client_secret_basic succeeds', tok.json);
  ok(tok.json.token_type === 'Bearer' && tok.json.access_token && tok.json.id_token, 'token response has access_token, id_token, token_type Bearer');
  ok(typeof tok.json.refresh_token === 'string', 'refresh_token issued without offline_access');
  ok(tok.json.expires_in > 590 && tok.json.expires_in <= 600, `access_token_ttl honoured (expires_in=${tok.json.expires_in})`);
  const basicTokens = tok.json;

  const { header, payload: idt } = decodeJwt(basicTokens.id_token);
  ok(header.alg === 'RS256' && jwks.keys.some((k) => k.kid === header.kid), 'id_token is RS256 signed with a published kid');
  ok(idt.iss === ready.issuers.test, 'id_token iss');
  ok(idt.aud === client[0], 'id_token aud');
  ok(idt.sub === 'alice-sub', 'id_token sub');
  ok(idt.nonce === first.nonce, 'id_token nonce');
  ok(idt.preferred_username === 'alice', 'id_token preferred_username');
  ok(idt.name === 'Alice Example', 'id_token name');
  ok(idt.email === 'alice@example.com' && idt.email_verified === true, 'id_token email + email_verified');
  ok(JSON.stringify(idt.groups) === '["engineering","admins"]', 'id_token groups', idt.groups);
  ok(JSON.stringify(idt.realm_access) === '{"roles":["admin"]}', 'id_token realm_access', idt.realm_access);
  ok(JSON.stringify(idt.resource_access) === '{"selftest-confidential":{"roles":["editor"]}}', 'id_token resource_access', idt.resource_access);

  section('userinfo');
  let ui = await userinfo(disco, basicTokens.access_token);
  ok(ui.status === 200, 'userinfo 200', ui.json);
  ok(ui.json.sub === 'alice-sub' && ui.json.preferred_username === 'alice' && ui.json.email === 'alice@example.com',
    'userinfo sub/preferred_username/email');
  ok(ui.json.email_verified === true && ui.json.name === 'Alice Example', 'userinfo email_verified/name');
  ok(JSON.stringify(ui.json.groups) === '["engineering","admins"]', 'userinfo groups');
  ok(JSON.stringify(ui.json.realm_access) === '{"roles":["admin"]}', 'userinfo realm_access');

  section('second login in the same browser (SSO, no form) + client_secret_post');
  const pkce2 = pkcePair();
  const second = await login(jar, disco, {
    clientId: client[0], redirectUri, pkce: pkce2, expectInteraction: false,
  });
  tok = await tokenRequest(disco, {
    grant_type: 'authorization_code', code: second.code, redirect_uri: redirectUri, code_verifier: pkce2.verifier,
  }, { post: client });
  ok(tok.status === 200 && tok.json.access_token && tok.json.refresh_token, 'code exchange with client_secret_post succeeds', tok.json);
  const postTokens = tok.json;
  ok(decodeJwt(postTokens.id_token).payload.sub === 'alice-sub', 'SSO id_token is for alice');

  section('wrong client secret / wrong PKCE verifier / code reuse (separate browser session)');
  {
    // a fresh session: code reuse revokes the whole grant, and a grant is per
    // (browser session, client)
    const p = pkcePair();
    const r = await login(new CookieJar(), disco, {
      clientId: client[0], redirectUri, pkce: p, username: 'alice', password: 'alice-password',
    });
    let bad = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { basic: [client[0], 'wrong'] });
    ok(bad.status === 401 && bad.json.error === 'invalid_client', 'wrong client secret -> 401 invalid_client', bad.json);
    bad = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: redirectUri, code_verifier: pkcePair().verifier,
    }, { basic: client });
    ok(bad.status === 400 && bad.json.error === 'invalid_grant', 'wrong code_verifier -> invalid_grant', bad.json);
    const good = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { basic: client });
    ok(good.status === 200, 'same code still redeemable with the right verifier', good.json);
    bad = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { basic: client });
    ok(bad.status === 400 && bad.json.error === 'invalid_grant', 'code cannot be redeemed twice', bad.json);
    const afterReuse = await userinfo(disco, good.access_token ?? good.json.access_token);
    ok(afterReuse.status === 401, 'code reuse revokes the tokens issued from that code', afterReuse.status);
  }

  section('refresh with rotation (default on)');
  tok = await tokenRequest(disco, { grant_type: 'refresh_token', refresh_token: basicTokens.refresh_token }, { basic: client });
  ok(tok.status === 200 && tok.json.access_token, 'refresh_token grant succeeds', tok.json);
  ok(tok.json.refresh_token && tok.json.refresh_token !== basicTokens.refresh_token, 'rotation returns a new refresh token');
  ok(decodeJwt(tok.json.id_token).payload.realm_access?.roles?.includes('admin'), 'refreshed id_token keeps claims');
  ui = await userinfo(disco, tok.json.access_token);
  ok(ui.status === 200 && ui.json.sub === 'alice-sub', 'refreshed access token works at userinfo');
  const reuse = await tokenRequest(disco, { grant_type: 'refresh_token', refresh_token: basicTokens.refresh_token }, { basic: client });
  ok(reuse.status === 400 && reuse.json.error === 'invalid_grant', 'old refresh token now fails with invalid_grant', reuse.json);
  // reuse detection revokes the whole grant (one grant per browser session + client)
  const rotated = await tokenRequest(disco, { grant_type: 'refresh_token', refresh_token: tok.json.refresh_token }, { basic: client });
  ok(rotated.status === 400 && rotated.json.error === 'invalid_grant', 'after reuse detection the rotated refresh token is revoked too', rotated.json);
  ui = await userinfo(disco, postTokens.access_token);
  ok(ui.status === 401, 'after reuse detection other tokens of the same grant (SSO login) are revoked', ui.status);

  // fresh browser session + tokens (own grant) for the destructive checks below
  async function freshTokens() {
    const p = pkcePair();
    const r = await login(new CookieJar(), disco, {
      clientId: client[0], redirectUri, pkce: p, username: 'alice', password: 'alice-password',
    });
    const t = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { post: client });
    ok(t.status === 200 && t.json.access_token && t.json.refresh_token, 'fresh login + tokens', t.json);
    return t.json;
  }

  section('introspection + access token revocation');
  {
    const fresh = await freshTokens();
    let i = await postForm(disco.introspection_endpoint, { token: fresh.access_token }, client);
    ok(i.status === 200 && i.json.active === true && i.json.sub === 'alice-sub' && i.json.client_id === client[0],
      'introspection: access token active with sub and client_id', i.json);
    i = await postForm(disco.introspection_endpoint, { token: fresh.refresh_token }, client);
    ok(i.status === 200 && i.json.active === true, 'introspection: refresh token active', i.json);
    i = await postForm(disco.introspection_endpoint, { token: 'not-a-token' }, client);
    ok(i.status === 200 && i.json.active === false, 'introspection: unknown token inactive', i.json);
    const rv = await postForm(disco.revocation_endpoint, { token: fresh.access_token, token_type_hint: 'access_token' }, client);
    ok(rv.status === 200, 'revocation of access token returns 200', rv.text);
    const u = await userinfo(disco, fresh.access_token);
    ok(u.status === 401, 'revoked access token is rejected by userinfo', u.status);
    i = await postForm(disco.introspection_endpoint, { token: fresh.access_token }, client);
    ok(i.json.active === false, 'introspection: revoked access token inactive', i.json);
  }

  section('refresh token revocation');
  {
    const fresh = await freshTokens();
    const rv = await postForm(disco.revocation_endpoint, { token: fresh.refresh_token, token_type_hint: 'refresh_token' }, client);
    ok(rv.status === 200, 'revocation of refresh token returns 200', rv.text);
    const t = await tokenRequest(disco, { grant_type: 'refresh_token', refresh_token: fresh.refresh_token }, { basic: client });
    ok(t.status === 400 && t.json.error === 'invalid_grant', 'revoked refresh token fails with invalid_grant', t.json);
    const i = await postForm(disco.introspection_endpoint, { token: fresh.access_token }, client);
    ok(i.json.active === false, 'access token of the revoked grant is inactive too', i.json);
  }

  section('wrong password shows the form again with an error');
  {
    const freshJar = new CookieJar();
    const p = pkcePair();
    const r = await login(freshJar, disco, {
      clientId: client[0], redirectUri, pkce: p, username: 'alice', password: 'nope',
    });
    ok(r.status === 200, 'wrong password answers 200');
    ok(/class="error"[^>]*>[^<]*Invalid username or password/.test(r.loginPage), 'error message shown');
    ok(r.loginPage.includes('name="password"') && r.loginPage.includes('>Sign in<'), 'login form shown again');
    const action = new URL(/action="([^"]+)"/.exec(r.loginPage)[1], disco.issuer);
    let res = await request(freshJar, action.href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'alice', password: 'alice-password' }).toString(),
    });
    ok(res.status === 303, 'correct password after a failed attempt succeeds', res.status);
    res = await request(freshJar, new URL(res.headers.get('location'), action).href);
    const cb = new URL(res.headers.get('location'));
    ok(cb.searchParams.get('code') && cb.port === String(callbackPort), 'code delivered after retry');
    const unknown = await login(new CookieJar(), disco, {
      clientId: client[0], redirectUri, pkce: pkcePair(), username: 'mallory', password: 'x',
    });
    ok(unknown.status === 200 && unknown.loginPage.includes('Invalid username or password'), 'unknown user shows the error too');
  }

  section('bob on the root issuer (defaults routes, scopes without roles)');
  {
    const bobJar = new CookieJar();
    const p = pkcePair();
    const r = await login(bobJar, rootDisco, {
      clientId: client[0], redirectUri, pkce: p, username: 'bob', password: 'bob-password',
    });
    const t = await tokenRequest(rootDisco, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { post: client });
    ok(t.status === 200, 'root issuer token exchange', t.json);
    const c = decodeJwt(t.json.id_token).payload;
    ok(c.iss === ready.issuers.root && c.sub === 'bob-sub', 'root id_token iss/sub');
    ok(c.email === 'bob@example.org' && c.email_verified === false, 'bob email_verified=false');
    ok(JSON.stringify(c.groups) === '["sales"]', 'bob groups');
    ok(c.realm_access === undefined, 'root issuer omits realm_access without scope roles');
    const u = await userinfo(rootDisco, t.json.access_token);
    ok(u.status === 200 && u.json.sub === 'bob-sub', 'root userinfo');
    const cross = await userinfo(disco, t.json.access_token);
    ok(cross.status === 401, 'root access token is not accepted by realm "test" (isolated issuers)', cross.status);
    const noGroups = await login(bobJar, rootDisco, {
      clientId: client[0], redirectUri, pkce: p, scope: 'openid email', expectInteraction: false,
    });
    const t2 = await tokenRequest(rootDisco, {
      grant_type: 'authorization_code', code: noGroups.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { basic: client });
    const c2 = decodeJwt(t2.json.id_token).payload;
    ok(c2.groups === undefined && c2.name === undefined && c2.email === 'bob@example.org', 'claims follow scopes (no groups/profile without those scopes)');
  }

  section('public client: PKCE required, loopback port flexibility');
  {
    const pubJar = new CookieJar();
    const otherPortUri = `http://127.0.0.1:${publicPort + 1}/cb`;
    const noPkce = await login(pubJar, disco, {
      clientId: 'selftest-public', redirectUri: otherPortUri, expectInteraction: false,
    });
    ok(noPkce.error === 'invalid_request' && /PKCE/.test(noPkce.error_description),
      'public client without code_challenge gets invalid_request at redirect_uri', noPkce);
    const p = pkcePair();
    const r = await login(pubJar, disco, {
      clientId: 'selftest-public', redirectUri: otherPortUri, pkce: p, username: 'bob', password: 'bob-password', scope: 'openid',
    });
    const t = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: otherPortUri, code_verifier: p.verifier,
    }, { post: ['selftest-public'] });
    ok(t.status === 200 && t.json.refresh_token, 'public client exchanges code with PKCE and no secret', t.json);
    const c = decodeJwt(t.json.id_token).payload;
    ok(c.sub === 'bob-sub' && JSON.stringify(c.realm_access) === '{"roles":[]}' && JSON.stringify(c.resource_access) === '{}',
      'realm issuers always include realm_access/resource_access', c);

    // same browser, more scopes: only consent is missing -> the interaction
    // page grants it without showing a form
    const p2 = pkcePair();
    const authUrl = new URL(disco.authorization_endpoint);
    authUrl.search = new URLSearchParams({
      client_id: 'selftest-public', response_type: 'code', redirect_uri: otherPortUri, scope: 'openid groups email',
      state: 'consent-state', code_challenge: p2.challenge, code_challenge_method: 'S256',
    });
    let res = await request(pubJar, authUrl.href);
    ok(res.status === 303 && /\/interaction\//.test(res.headers.get('location')), 'new scopes for a logged-in user go through the interaction page');
    const interactionUrl = new URL(res.headers.get('location'), authUrl);
    res = await request(pubJar, interactionUrl.href);
    ok(res.status === 303, 'interaction page auto-grants consent (303, no form)', res.status);
    res = await request(pubJar, new URL(res.headers.get('location'), interactionUrl).href);
    const cb = new URL(res.headers.get('location'));
    ok(cb.searchParams.get('code') && cb.searchParams.get('state') === 'consent-state', 'code delivered after auto-consent');
    const t2 = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: cb.searchParams.get('code'), redirect_uri: otherPortUri, code_verifier: p2.verifier,
    }, { post: ['selftest-public'] });
    const c2 = decodeJwt(t2.json.id_token).payload;
    ok(JSON.stringify(c2.groups) === '["sales"]' && c2.email === 'bob@example.org', 'added scopes are reflected in the id_token', c2);
  }

  section('simplest cookie jar (ignores Path, one value per name) still works');
  {
    const naive = new CookieJar({ ignorePaths: true });
    const p = pkcePair();
    const r = await login(naive, disco, {
      clientId: client[0], redirectUri, pkce: p, username: 'alice', password: 'alice-password',
    });
    ok(typeof r.code === 'string', 'login with a path-less cookie jar');
    const r2 = await login(naive, disco, {
      clientId: client[0], redirectUri, pkce: p, username: 'bob', password: 'bob-password', extra: { prompt: 'login' },
    });
    const t = await tokenRequest(disco, {
      grant_type: 'authorization_code', code: r2.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { basic: client });
    ok(decodeJwt(t.json.id_token).payload.sub === 'bob-sub', 'prompt=login re-shows the form; switching user to bob works');
  }

  section('realm "other" is independent');
  {
    const otherDisco = await discovery(ready.issuers.other);
    const otherJar = new CookieJar();
    // a session in realm "test" must not log the browser into realm "other"
    for (const [k, v] of jar.cookies) otherJar.cookies.set(k, v);
    const p = pkcePair();
    const r = await login(otherJar, otherDisco, {
      clientId: client[0], redirectUri, pkce: p, username: 'alice', password: 'alice-password',
    });
    ok(r.iss === ready.issuers.other, 'login at realm "other" required its own form and returns its iss');
  }

  section('stdout discipline');
  ok(srv.stdoutAll() === `${srv.child.readyLine}\n`, 'nothing but the ready line was written to stdout', srv.stdoutAll());

  section('exit when stdin closes');
  srv.child.stdin.end();
  const exit1 = await Promise.race([srv.exited, new Promise((r) => setTimeout(() => r('timeout'), 5000))]);
  ok(exit1 !== 'timeout' && exit1.code === 0, 'server exits with code 0 after stdin closes', exit1);

  section('second server: rotation off, UPSTREAM_CLIENTS, default users, PORT, SIGTERM');
  {
    const envPort = await new Promise((resolve) => {
      import('node:net').then(({ createServer }) => {
        const s = createServer();
        s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
      });
    });
    const srv2 = startServer({ rotate_refresh_tokens: false }, {
      PORT: String(envPort),
      UPSTREAM_CLIENTS: JSON.stringify([{
        client_id: 'env-client', client_secret: 'env-secret', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'client_secret_post',
      }]),
    });
    const ready2 = await srv2.ready;
    ok(ready2.port === envPort, `PORT env honoured (${envPort})`);
    ok(JSON.stringify(Object.keys(ready2.issuers)) === '["root","test"]', 'default realms: only "test"');
    const d2 = await discovery(ready2.issuers.test);
    const p = pkcePair();
    const r = await login(new CookieJar(), d2, {
      clientId: 'env-client', redirectUri, pkce: p, username: 'alice', password: 'alice-password',
    });
    const envClient = ['env-client', 'env-secret'];
    const t = await tokenRequest(d2, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: redirectUri, code_verifier: p.verifier,
    }, { basic: envClient });
    ok(t.status === 200, 'client from UPSTREAM_CLIENTS works (client_secret_post client accepts basic too)', t.json);
    const c = decodeJwt(t.json.id_token).payload;
    ok(c.sub === 'alice-sub' && c.email_verified === true && JSON.stringify(c.realm_access) === '{"roles":["admin"]}', 'default user alice');
    const r1 = await tokenRequest(d2, { grant_type: 'refresh_token', refresh_token: t.json.refresh_token }, { post: envClient });
    ok(r1.status === 200, 'refresh works without rotation', r1.json);
    ok(r1.json.refresh_token === undefined || r1.json.refresh_token === t.json.refresh_token, 'rotation off: refresh token unchanged');
    const r2 = await tokenRequest(d2, { grant_type: 'refresh_token', refresh_token: t.json.refresh_token }, { post: envClient });
    ok(r2.status === 200, 'rotation off: the same refresh token can be used again', r2.json);
    const defUrl = new URL(d2.authorization_endpoint);
    defUrl.search = new URLSearchParams({
      client_id: 'authhost', response_type: 'code', scope: 'openid', redirect_uri: redirectUri,
    });
    const defRes = await request(new CookieJar(), defUrl.href);
    const defBody = await defRes.text();
    ok(defRes.status === 400 && defBody.includes('invalid_client'), 'default client "authhost" is replaced when clients are given', `${defRes.status} ${defBody.slice(0, 200)}`);
    srv2.child.kill('SIGTERM');
    const exit2 = await Promise.race([srv2.exited, new Promise((res) => setTimeout(() => res('timeout'), 5000))]);
    ok(exit2 !== 'timeout' && (exit2.code === 0 || exit2.signal === 'SIGTERM'), 'server exits on SIGTERM', exit2);
  }

  section('third server: no config file at all (defaults)');
  {
    const srv3 = startServer(null);
    const ready3 = await srv3.ready;
    const d3 = await discovery(ready3.issuers.test);
    const p = pkcePair();
    const r = await login(new CookieJar(), d3, {
      clientId: 'authhost', redirectUri: `http://127.0.0.1:${callbackPort}/callback`, pkce: p, username: 'bob', password: 'bob-password',
    });
    const t = await tokenRequest(d3, {
      grant_type: 'authorization_code', code: r.code, redirect_uri: `http://127.0.0.1:${callbackPort}/callback`, code_verifier: p.verifier,
    }, { basic: ['authhost', 'authhost-secret'] });
    ok(t.status === 200, 'default client authhost/authhost-secret with any loopback port', t.json);
    const c = decodeJwt(t.json.id_token).payload;
    ok(c.sub === 'bob-sub' && c.email === 'bob@example.org' && c.email_verified === false && c.name === 'Bob Example',
      'default user bob', c);
    srv3.child.stdin.destroy();
    const exit3 = await Promise.race([srv3.exited, new Promise((res) => setTimeout(() => res('timeout'), 5000))]);
    ok(exit3 !== 'timeout', 'exits when the parent drops its stdin pipe', exit3);
  }

  if (process.env.SELFTEST_SHOW_SERVER_LOG) {
    for (const [i, logs] of serverLogs.entries()) console.log(`\n--- server ${i + 1} stderr ---\n${logs()}`);
  }
  console.log(`\nall ${checks} checks passed`);
}

try {
  await main();
  rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
} catch (err) {
  console.error(`\nFAILED: ${err.stack || err}`);
  for (const child of children) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
}
