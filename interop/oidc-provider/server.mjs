// panva/oidc-provider on 127.0.0.1 (a free port), for the interop tests.
// Prints {"issuer": "..."} on stdout once it listens; stops on SIGTERM or
// when stdin closes (the test process died).
//
// Clients: m2m-basic, m2m-post (client_credentials with a secret), m2m-jwt
// (private_key_jwt, when CLIENT_JWKS is set), and cli: a public native
// client for browser (code + PKCE, any loopback port) and device login,
// with rotating refresh tokens. Interactions are approved at once as the
// user "test-user", so a test drives the code flow without a browser; the
// device verification page is the provider's own form, reduced to the form.
// Environment: CC_TTL, AT_TTL (access tokens, s), RT_TTL (refresh tokens, s);
// DPOP=1 requires a server nonce in every DPoP proof (DPoP itself is on:
// a request with a proof gets tokens bound to its key), and adds the
// clients m2m-dpop and cli-dpop, whose tokens must be DPoP-bound.
// BFF_ORIGIN adds the client bff (a confidential web client: code + PKCE,
// rotating refresh tokens, RP-initiated logout back to that origin, and
// OpenID Back-Channel Logout to its /bff/backchannel-logout); PROXY_ORIGIN
// adds oauth2-proxy (the same, with its /oauth2/callback; for a
// comma-separated list of origins, oauth2-proxy, oauth2-proxy-2, ...). The provider's
// logout page confirms at once, as the user's click would.
// GET /_counts answers what the provider saw: refresh_token grants, and
// errors by endpoint and code; and both again by client ("clients").
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

// An unbounded in-memory adapter: the built-in one keeps 1,000 entries,
// and a load test's grants would evict live refresh tokens.
const store = new Map();
const grants = new Map();
class MemoryAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload) {
    store.set(this.key(id), payload);
    if (payload.grantId) {
      const keys = grants.get(payload.grantId) || new Set();
      keys.add(this.key(id));
      grants.set(payload.grantId, keys);
    }
    if (payload.userCode) store.set(`${this.name}:userCode:${payload.userCode}`, id);
    if (payload.uid) store.set(`${this.name}:uid:${payload.uid}`, id);
  }
  async find(id) {
    const p = store.get(this.key(id));
    if (!p || (p.exp && p.exp * 1000 < Date.now())) return undefined;
    return p;
  }
  async findByUserCode(code) { const id = store.get(`${this.name}:userCode:${code}`); return id && this.find(id); }
  async findByUid(uid) { const id = store.get(`${this.name}:uid:${uid}`); return id && this.find(id); }
  async consume(id) { const p = store.get(this.key(id)); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const k of grants.get(grantId) || []) store.delete(k);
    grants.delete(grantId);
  }
}

const page = (body) => `<!doctype html><html><body>${body}</body></html>`;

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    clients: [
      { client_id: 'm2m-basic', client_secret: 'basic-secret-0123456789', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read api:write' },
      { client_id: 'm2m-post', client_secret: 'post-secret-0123456789', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post', scope: 'api:read' },
      ...(process.env.CLIENT_JWKS ? [{ client_id: 'm2m-jwt', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks: JSON.parse(process.env.CLIENT_JWKS), scope: 'api:read' }] : []),
      ...(process.env.DPOP === '1' ? [
        { client_id: 'm2m-dpop', client_secret: 'dpop-secret-0123456789', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read', dpop_bound_access_tokens: true },
        { client_id: 'cli-dpop', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'], response_types: ['code'], redirect_uris: ['http://127.0.0.1/callback'], dpop_bound_access_tokens: true },
      ] : []),
      ...(process.env.BFF_ORIGIN ? [{
        client_id: 'bff', client_secret: 'bff-secret-0123456789', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        redirect_uris: [`${process.env.BFF_ORIGIN}/bff/callback`], post_logout_redirect_uris: [`${process.env.BFF_ORIGIN}/`],
        backchannel_logout_uri: `${process.env.BFF_ORIGIN}/bff/backchannel-logout`, backchannel_logout_session_required: true,
      }] : []),
      ...(process.env.PROXY_ORIGIN || '').split(',').filter(Boolean).map((origin, i) => ({
        client_id: i ? `oauth2-proxy-${i + 1}` : 'oauth2-proxy', client_secret: 'proxy-secret-0123456789',
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: [`${origin}/oauth2/callback`],
      })),
      { client_id: 'cli', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'], response_types: ['code'], redirect_uris: ['http://127.0.0.1/callback'] },
    ],
    scopes: ['openid', 'offline_access', 'email', 'api:read', 'api:write'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    findAccount: async (ctx, id) => ({ accountId: id, async claims() { return { sub: id, email: `${id}@example.com`, email_verified: true }; } }),
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      clientCredentials: { enabled: true },
      dPoP: process.env.DPOP === '1' ? { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true } : { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page(`${form}<button id="yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes</button><script>document.getElementById('yes').click()</script>`);
        },
        postLogoutSuccessSource: async (ctx) => { ctx.body = page('<p id="signed-out">signed out</p>'); },
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx, form, out, err) => { ctx.body = page(`${form}${err ? `<p>error: ${err.name}</p>` : ''}`); },
        userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => { ctx.body = page(`${form}<p>confirm ${userCode}</p>`); },
        successSource: async (ctx) => { ctx.body = page('<p>device login approved</p>'); },
      },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    clockTolerance: 0,
    // Its outgoing requests (back-channel logouts) go to clients on
    // loopback, which its guard against server-side request forgery
    // refuses: lifted here, for a provider that serves tests only.
    fetch: (url, options) => { delete options.dispatcher; return globalThis.fetch(url, options); },
    ttl: {
      ClientCredentials: Number(process.env.CC_TTL || 60),
      AccessToken: Number(process.env.AT_TTL || 60),
      RefreshToken: Number(process.env.RT_TTL || 3600),
      Grant: 3600, Session: 3600, Interaction: 600, DeviceCode: 600, AuthorizationCode: 60, IdToken: 3600,
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  const counts = { refreshes: 0, errors: {}, clients: {} };
  const byClient = (ctx) => {
    const id = ctx.oidc?.client?.clientId || '-';
    counts.clients[id] ||= { refreshes: 0, errors: {} };
    return counts.clients[id];
  };
  provider.on('backchannel.error', (ctx, err, client) => console.error('backchannel.error', client.clientId, err));
  provider.on('grant.success', (ctx) => {
    if (ctx.oidc.params.grant_type === 'refresh_token') { counts.refreshes += 1; byClient(ctx).refreshes += 1; }
  });
  for (const [event, where] of [['grant.error', 'token'], ['userinfo.error', 'userinfo'], ['revocation.error', 'revocation']]) {
    provider.on(event, (ctx, err) => {
      if (process.env.DEBUG) console.error(event, err.error, err.error_description, err.error_detail);
      const k = `${where}:${err.error}`;
      counts.errors[k] = (counts.errors[k] || 0) + 1;
      // By client, with the detail: "refresh token already used" is a
      // rotated refresh token presented again.
      const e = byClient(ctx).errors;
      const d = `${k}: ${err.error_detail || err.error_description}`;
      e[d] = (e[d] || 0) + 1;
    });
  }
  const callback = provider.callback();

  // The user's part of an interaction, done at once: log in as test-user,
  // then grant what the client asked for.
  async function interact(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session, grantId } = details;
    let result;
    if (prompt.name === 'login') {
      result = { login: { accountId: 'test-user' } };
    } else {
      const grant = grantId ? await provider.Grant.find(grantId) : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) grant.addResourceScope(indicator, scopes.join(' '));
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  server.on('request', (req, res) => {
    if (req.url === '/_counts') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(counts));
      return;
    }
    if (req.url.startsWith('/interaction/')) {
      interact(req, res).catch((err) => { console.error('interaction', err); res.statusCode = 500; res.end(String(err)); });
      return;
    }
    callback(req, res);
  });
  console.log(JSON.stringify({ issuer }));
});
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
