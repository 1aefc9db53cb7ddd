// panva/openid-client, the reference OAuth client, driven by the interop
// tests against the same oidc-provider and flows as authrefresh: CALLERS
// concurrent callers of userinfo with one DPoP-bound, rotating token pair
// for DURATION_MS. openid-client signs the proofs (getDPoPHandle), learns
// the nonces and retries a use_dpop_nonce once by itself; it refreshes only
// when asked, so the refresh is written here the two ways applications
// write it:
//
//   expiry: each caller checks the expiry before its call and refreshes
//           when it has passed (no coordination between callers);
//   queue:  the articles' interceptor: a call refused with 401 starts one
//           refresh that every other refused call waits for, then replays.
//
// stdin, one JSON object (never argv: tokens must not show in a process
// list): {"issuer", "mode", "callers", "duration_ms", "access_token",
// "refresh_token", "expires_in", "jwk"} — jwk is the private P-256 key the
// tokens are bound to. stdout: {"calls", "failures", "refreshes",
// "refresh_failures", "first_error"}.
import * as client from 'openid-client';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { issuer, mode, callers, duration_ms: durationMs, jwk, ...first } = JSON.parse(input);
if (!['expiry', 'queue'].includes(mode)) {
  console.error('mode: expiry or queue');
  process.exit(2);
}

const config = await client.discovery(new URL(issuer), 'cli', undefined, client.None(), { execute: [client.allowInsecureRequests] });
const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
const { d, ...pub } = jwk;
const keyPair = {
  privateKey: await crypto.subtle.importKey('jwk', { ...pub, d }, algorithm, false, ['sign']),
  publicKey: await crypto.subtle.importKey('jwk', pub, algorithm, true, ['verify']),
};
const DPoP = client.getDPoPHandle(config, keyPair);

let tokens = { ...first, expires_at: Date.now() + first.expires_in * 1000 };
let refreshing = null;
const counts = { calls: 0, failures: 0, refreshes: 0, refresh_failures: 0, first_error: '' };
const fail = (err) => {
  counts.failures += 1;
  if (!counts.first_error) counts.first_error = `${err.code || err.name}: ${err.error || ''} ${err.error_description || err.message}`.trim();
};

async function refresh() {
  try {
    const r = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
    counts.refreshes += 1;
    tokens = { access_token: r.access_token, refresh_token: r.refresh_token ?? tokens.refresh_token, expires_at: Date.now() + r.expires_in * 1000 };
  } catch (err) {
    counts.refresh_failures += 1;
    throw err;
  }
}

const userinfo = (at) => client.fetchUserInfo(config, at, client.skipSubjectCheck, { DPoP });
const refused = (err) => err instanceof client.WWWAuthenticateChallengeError || err?.status === 401 || err?.cause?.status === 401;

async function call() {
  if (mode === 'expiry') {
    if (Date.now() >= tokens.expires_at) await refresh();
    return userinfo(tokens.access_token);
  }
  try {
    return await userinfo(tokens.access_token);
  } catch (err) {
    if (!refused(err)) throw err;
    refreshing ??= refresh().finally(() => { refreshing = null; });
    await refreshing;
    return userinfo(tokens.access_token);
  }
}

const end = Date.now() + durationMs;
await Promise.all(Array.from({ length: callers }, async () => {
  while (Date.now() < end) {
    counts.calls += 1;
    try {
      await call();
    } catch (err) {
      fail(err);
    }
  }
}));
console.log(JSON.stringify(counts));
