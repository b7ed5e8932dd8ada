// Peer rate limiter for bench/limiter.py: rate-limiter-flexible's RateLimiterRedis on ioredis
// (auto-pipelining on, as its docs recommend for throughput), against the Redis in REDIS_URL.
//
//   MODE=throughput  CONCURRENCY callers, each on its own counter, for SECONDS; LIMITS=1 uses
//                    one limiter, LIMITS>1 a RateLimiterUnion of that many (one script call each)
//   MODE=accuracy    CONCURRENCY callers on ONE counter allowing POINTS per DURATION seconds,
//                    for SECONDS: how many were admitted
//   MODE=sequential  one caller, COUNT decisions one after another (round trips per decision)
//
// Prints one JSON line.
import Redis from 'ioredis';
import { RateLimiterRedis, RateLimiterUnion } from 'rate-limiter-flexible';

const env = (name, dflt) => process.env[name] ?? dflt;
const mode = env('MODE', 'throughput');
const concurrency = Number(env('CONCURRENCY', '64'));
const seconds = Number(env('SECONDS', '3'));
const nLimits = Number(env('LIMITS', '1'));
const points = Number(env('POINTS', '1000000000'));
const duration = Number(env('DURATION', '3600'));
const count = Number(env('COUNT', '2000'));
const run = Math.random().toString(36).slice(2, 10);

const redis = new Redis(env('REDIS_URL', 'redis://127.0.0.1:6379/0'), { enableAutoPipelining: true });

const limiters = Array.from({ length: nLimits }, (_, i) => new RateLimiterRedis({
  storeClient: redis, points, duration, keyPrefix: `rlf:${run}:${i}`,
}));
const limiter = nLimits === 1 ? limiters[0] : new RateLimiterUnion(...limiters);

async function decide(key) {
  try {
    await limiter.consume(key, 1);
    return true;
  } catch (err) {
    if (err instanceof Error) throw err;
    return false; // a RateLimiterRes (or a map of them for a union): refused
  }
}

function pct(sorted, q) {
  const rank = Math.max(1, Math.min(sorted.length, Math.ceil((q / 100) * sorted.length)));
  return sorted[rank - 1];
}

async function loop(key, stopAt, lat) {
  let admitted = 0;
  let n = 0;
  while (performance.now() < stopAt) {
    const t0 = performance.now();
    if (await decide(key)) admitted += 1;
    lat.push(performance.now() - t0);
    n += 1;
  }
  return { admitted, n };
}

await redis.ping();
const lat = [];
let out;
if (mode === 'sequential') {
  const t0 = performance.now();
  for (let i = 0; i < count; i += 1) await decide(`seq`);
  out = { decisions: count, seconds: (performance.now() - t0) / 1000 };
} else {
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  const keyOf = (w) => (mode === 'accuracy' ? 'shared' : `w${w}`);
  const parts = await Promise.all(Array.from({ length: concurrency }, (_, w) => loop(keyOf(w), stopAt, lat)));
  const elapsed = (performance.now() - started) / 1000;
  const decisions = parts.reduce((a, p) => a + p.n, 0);
  const admitted = parts.reduce((a, p) => a + p.admitted, 0);
  lat.sort((a, b) => a - b);
  out = {
    decisions, admitted, seconds: elapsed, rate: decisions / elapsed,
    p50_ms: pct(lat, 50), p99_ms: pct(lat, 99),
  };
}
console.log(JSON.stringify(out));
redis.disconnect();
