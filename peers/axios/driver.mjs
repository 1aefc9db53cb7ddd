// The axios-auth-refresh peer, driven by the peers module's Go benchmarks.
// One axios instance wired as axios-auth-refresh's README shows: a request
// interceptor attaches the current access token, createAuthRefreshInterceptor
// refreshes on 401 and replays.
//
//   node driver.mjs amplify BASE_URL MODE N              < tokens.json
//   node driver.mjs steady  BASE_URL MODE WORKERS DURATION_MS PAUSE_MS < tokens.json
//
// MODE "defaults" keeps every option at its default (statusCodes [401],
// deduplicateRefresh true, maxRetries 3); "no-dedup" sets deduplicateRefresh:
// false, the workaround for axios-auth-refresh#307 (with the default, a 401
// that arrives while the refresh is pending is rejected, not retried).
//
// stdin: {"access_token": "...", "refresh_token": "..."} (never argv: tokens
// must not show in a process list). stdout, one JSON object:
//   amplify: {"ok": n, "failed": n}
//   steady:  {"samples": [[start_epoch_ms, latency_ms, failed(0|1)], ...],
//             "expiries": [exp_epoch_s of every access token refreshed]}
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import axios from 'axios';
import createAuthRefreshInterceptor from 'axios-auth-refresh';

const [scenario, baseURL, mode, ...rest] = process.argv.slice(2);
const nums = rest.map(Number);
const usage = () => {
  console.error('usage: node driver.mjs amplify|steady BASE_URL defaults|no-dedup ARGS... < tokens.json');
  process.exit(2);
};
if (!baseURL || !['defaults', 'no-dedup'].includes(mode) || nums.some((n) => !Number.isInteger(n) || n < 0)) usage();
if (!(scenario === 'amplify' && nums.length === 1) && !(scenario === 'steady' && nums.length === 3)) usage();

let input = '';
for await (const chunk of process.stdin) input += chunk;
let tokens = JSON.parse(input);
const expiries = [];

// Room for as many connections as the Go peers get, kept alive.
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const api = axios.create({ baseURL, httpAgent });
api.interceptors.request.use((config) => {
  config.headers.Authorization = `Bearer ${tokens.access_token}`;
  return config;
});

// The refresh call goes through plain axios, not the intercepted instance,
// and is marked skipAuthRefresh as the README asks when deduplication is off.
const refreshAuthLogic = (failedRequest) =>
  axios.post(`${baseURL}/auth/refresh`, { refresh_token: tokens.refresh_token }, { httpAgent, skipAuthRefresh: true })
    .then((res) => {
      tokens = res.data;
      const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
      expiries.push(claims.exp);
      failedRequest.response.config.headers.Authorization = `Bearer ${tokens.access_token}`;
    });
createAuthRefreshInterceptor(api, refreshAuthLogic, mode === 'no-dedup' ? { deduplicateRefresh: false } : {});

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

if (scenario === 'amplify') {
  const [n] = nums;
  const results = await Promise.allSettled(Array.from({ length: n }, () => api.get('/api/v1/me')));
  const failed = results.filter((r) => r.status === 'rejected').length;
  process.stdout.write(JSON.stringify({ ok: n - failed, failed }) + '\n');
} else {
  const [workers, durationMs, pauseMs] = nums;
  const deadline = now() + durationMs;
  const samples = [];
  const worker = async () => {
    while (now() < deadline) {
      const began = now();
      let failed = 0;
      try {
        await api.get('/api/v1/me');
      } catch {
        failed = 1;
      }
      samples.push([began, now() - began, failed]);
      await sleep(pauseMs);
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  process.stdout.write(JSON.stringify({ samples, expiries }) + '\n');
}
httpAgent.destroy();
