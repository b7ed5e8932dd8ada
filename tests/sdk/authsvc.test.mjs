// The browser client (authsvc/sdk/authsvc.js) under Node's test runner, with a fake token
// endpoint and data API behind an injected fetch and a controllable clock.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TokenExchangeError, createTokenSource } from "../../authsvc/sdk/authsvc.js";

const BASE = "https://auth.example.com/";
const ENDPOINT = "https://auth.example.com/t/acme%20corp/oauth2/token";
const API = "https://api.example.com/v0/pipes/orders.json";

function json(status, body) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

// A fake server: token exchanges answer with tok-1, tok-2, ...; data calls answer with the
// statuses queued in `api` (default 200) and record the headers they saw.
function fakeServer({ expiresIn = 900, api = [] } = {}) {
  const server = {
    exchanges: [],
    calls: [],
    subjectCalls: 0,
    gate: null,
    exchangeReply: null,
    clock: 1_000_000,
  };
  server.now = () => server.clock;
  server.fetch = async (input, init = {}) => {
    const url = typeof input === "string" ? input : input.url;
    if (url === ENDPOINT) {
      server.exchanges.push({ url, init, form: new URLSearchParams(init.body) });
      if (server.gate) await server.gate;
      if (server.exchangeReply) return server.exchangeReply();
      return json(200, {
        access_token: `tok-${server.exchanges.length}`,
        issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
        token_type: "Bearer",
        expires_in: expiresIn,
        scope: "PIPES:READ:orders",
      });
    }
    const request = new Request(input, init);
    server.calls.push({
      url,
      method: request.method,
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
    });
    return new Response("{}", { status: api.shift() ?? 200 });
  };
  server.source = (extra = {}) =>
    createTokenSource({
      baseUrl: BASE,
      tenant: "acme corp",
      getSubjectToken: async () => {
        server.subjectCalls += 1;
        return "idp.jwt.token";
      },
      fetch: server.fetch,
      now: server.now,
      ...extra,
    });
  return server;
}

test("getToken exchanges the subject token with an RFC 8693 form post", async () => {
  const server = fakeServer();
  const token = await server.source({ scope: ["PIPES:READ:orders", "PIPES:READ:x"], audience: "api" }).getToken();
  assert.equal(token, "tok-1");
  const [{ url, init, form }] = server.exchanges;
  assert.equal(url, ENDPOINT);
  assert.equal(init.method, "POST");
  assert.equal(init.headers["Content-Type"], "application/x-www-form-urlencoded");
  assert.equal(init.credentials, "omit");
  assert.equal(init.redirect, "error");
  assert.equal(init.cache, "no-store");
  assert.deepEqual(Object.fromEntries(form), {
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token: "idp.jwt.token",
    subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
    scope: "PIPES:READ:orders PIPES:READ:x",
    audience: "api",
  });
});

test("without scope or audience the form carries neither", async () => {
  const server = fakeServer();
  await server.source().getToken();
  const form = server.exchanges[0].form;
  assert.equal(form.has("scope"), false);
  assert.equal(form.has("audience"), false);
});

test("the token is cached until the refresh margin", async () => {
  const server = fakeServer({ expiresIn: 900 }); // margin: max(30 s, 180 s) = 180 s
  const source = server.source();
  assert.equal(await source.getToken(), "tok-1");
  server.clock += 719_000;
  assert.equal(await source.getToken(), "tok-1");
  assert.equal(server.exchanges.length, 1);
  server.clock += 2_000;
  assert.equal(await source.getToken(), "tok-2");
  assert.equal(server.exchanges.length, 2);
  assert.equal(server.subjectCalls, 2);
});

test("a token with a short lifetime is refreshed 30 s before expiry", async () => {
  const server = fakeServer({ expiresIn: 100 }); // margin: max(30 s, 20 s) = 30 s
  const source = server.source();
  await source.getToken();
  server.clock += 69_000;
  assert.equal(await source.getToken(), "tok-1");
  server.clock += 2_000;
  assert.equal(await source.getToken(), "tok-2");
});

test("a token shorter than a minute is refreshed at half its lifetime", async () => {
  const server = fakeServer({ expiresIn: 20 });
  const source = server.source();
  await source.getToken();
  server.clock += 9_000;
  assert.equal(await source.getToken(), "tok-1");
  server.clock += 2_000;
  assert.equal(await source.getToken(), "tok-2");
});

test("concurrent callers share one exchange", async () => {
  const server = fakeServer();
  let open;
  server.gate = new Promise((resolve) => {
    open = resolve;
  });
  const source = server.source();
  const pending = Array.from({ length: 20 }, () => source.getToken());
  await new Promise((resolve) => setTimeout(resolve, 10));
  open();
  const tokens = await Promise.all(pending);
  assert.deepEqual(new Set(tokens), new Set(["tok-1"]));
  assert.equal(server.exchanges.length, 1);
  assert.equal(server.subjectCalls, 1);
});

test("an RFC 6749 error is thrown with its code and status", async () => {
  const server = fakeServer();
  server.exchangeReply = () =>
    json(400, { error: "invalid_grant", error_description: "The subject token has expired." });
  const source = server.source();
  await assert.rejects(source.getToken(), (err) => {
    assert.ok(err instanceof TokenExchangeError);
    assert.ok(err instanceof Error);
    assert.equal(err.error, "invalid_grant");
    assert.equal(err.status, 400);
    assert.equal(err.message, "The subject token has expired.");
    return true;
  });
  server.exchangeReply = null;
  assert.equal(await source.getToken(), "tok-2"); // a failure is not cached
});

test("a non-JSON error answer is an invalid_response with its status", async () => {
  const server = fakeServer();
  server.exchangeReply = () => new Response("<html>Bad Gateway</html>", { status: 502 });
  await assert.rejects(server.source().getToken(), (err) => {
    assert.equal(err.error, "invalid_response");
    assert.equal(err.status, 502);
    return true;
  });
});

test("a success answer without a usable token is refused", async () => {
  for (const body of [
    {},
    { access_token: "t", token_type: "Bearer" },
    { access_token: "t", token_type: "MAC", expires_in: 60 },
    { access_token: "", token_type: "Bearer", expires_in: 60 },
    { access_token: "t", token_type: "Bearer", expires_in: -1 },
  ]) {
    const server = fakeServer();
    server.exchangeReply = () => json(200, body);
    await assert.rejects(server.source().getToken(), (err) => err.error === "invalid_response");
  }
});

test("a subject token provider that fails or returns nothing rejects getToken", async () => {
  const server = fakeServer();
  const failing = server.source({
    getSubjectToken: async () => {
      throw new Error("login required");
    },
  });
  await assert.rejects(failing.getToken(), /login required/);
  const empty = server.source({ getSubjectToken: async () => "" });
  await assert.rejects(empty.getToken(), (err) => err.error === "invalid_request");
  assert.equal(server.exchanges.length, 0);
});

test("fetch adds the bearer token and keeps every other header", async () => {
  const server = fakeServer();
  const source = server.source();
  await source.fetch(API, { headers: { "X-Trace": "abc", Accept: "text/csv" } });
  await source.fetch(API, { headers: new Headers([["X-Other", "1"]]) });
  await source.fetch(API, { headers: [["X-Array", "2"]], method: "POST", body: "q=1" });
  await source.fetch(API);
  const seen = server.calls.map((call) => call.headers);
  assert.equal(seen[0].authorization, "Bearer tok-1");
  assert.equal(seen[0]["x-trace"], "abc");
  assert.equal(seen[0].accept, "text/csv");
  assert.equal(seen[1]["x-other"], "1");
  assert.equal(seen[2]["x-array"], "2");
  assert.equal(server.calls[2].method, "POST");
  assert.equal(server.calls[2].body, "q=1");
  assert.equal(seen[3].authorization, "Bearer tok-1");
  assert.equal(server.exchanges.length, 1);
});

test("fetch replaces a caller's Authorization header", async () => {
  const server = fakeServer();
  await server.source().fetch(API, { headers: { Authorization: "Bearer stale" } });
  assert.equal(server.calls[0].headers.authorization, "Bearer tok-1");
});

test("fetch works with a Request object and keeps its method, headers and body", async () => {
  const server = fakeServer({ api: [401, 200] });
  const request = new Request(API, { method: "PUT", headers: { "X-Req": "r" }, body: "payload" });
  const response = await server.source().fetch(request);
  assert.equal(response.status, 200);
  assert.equal(server.calls.length, 2);
  for (const call of server.calls) {
    assert.equal(call.method, "PUT");
    assert.equal(call.headers["x-req"], "r");
    assert.equal(call.body, "payload");
  }
  assert.equal(server.calls[1].headers.authorization, "Bearer tok-2");
});

test("a 401 drops the token, exchanges again and retries once", async () => {
  const server = fakeServer({ api: [401, 200] });
  const source = server.source();
  const response = await source.fetch(API);
  assert.equal(response.status, 200);
  assert.deepEqual(
    server.calls.map((call) => call.headers.authorization),
    ["Bearer tok-1", "Bearer tok-2"],
  );
  assert.equal(await source.getToken(), "tok-2");
});

test("a second 401 is returned, not retried again", async () => {
  const server = fakeServer({ api: [401, 401, 401] });
  const response = await server.source().fetch(API);
  assert.equal(response.status, 401);
  assert.equal(server.calls.length, 2);
  assert.equal(server.exchanges.length, 2);
});

test("other error statuses are not retried", async () => {
  for (const status of [400, 403, 404, 429, 500]) {
    const server = fakeServer({ api: [status] });
    const response = await server.source().fetch(API);
    assert.equal(response.status, status);
    assert.equal(server.calls.length, 1);
    assert.equal(server.exchanges.length, 1);
  }
});

test("concurrent 401s on the same token cause one new exchange", async () => {
  const server = fakeServer({ api: [401, 401, 401, 200, 200, 200] });
  const source = server.source();
  await source.getToken();
  const responses = await Promise.all([source.fetch(API), source.fetch(API), source.fetch(API)]);
  assert.deepEqual(responses.map((r) => r.status), [200, 200, 200]);
  assert.equal(server.exchanges.length, 2);
});

test("a failed re-exchange after a 401 propagates its error", async () => {
  const server = fakeServer({ api: [401] });
  const source = server.source();
  await source.getToken();
  server.exchangeReply = () => json(400, { error: "invalid_grant" });
  await assert.rejects(source.fetch(API), (err) => err.error === "invalid_grant" && err.status === 400);
});

test("a streamed body is not retried after a 401", async () => {
  const server = fakeServer({ api: [401, 200] });
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("once"));
      controller.close();
    },
  });
  const response = await server.source().fetch(API, { method: "POST", body, duplex: "half" });
  assert.equal(response.status, 401);
  assert.equal(server.calls.length, 1);
});

test("the global fetch is used when none is given", async () => {
  const server = fakeServer();
  const original = globalThis.fetch;
  globalThis.fetch = server.fetch;
  try {
    const source = createTokenSource({
      baseUrl: "https://auth.example.com",
      tenant: "acme corp",
      getSubjectToken: () => "idp.jwt.token",
      now: server.now,
    });
    assert.equal(await source.getToken(), "tok-1");
  } finally {
    globalThis.fetch = original;
  }
});

test("missing options are a TypeError at creation", () => {
  assert.throws(() => createTokenSource({ tenant: "a", getSubjectToken: () => "t" }), TypeError);
  assert.throws(() => createTokenSource({ baseUrl: BASE, getSubjectToken: () => "t" }), TypeError);
  assert.throws(() => createTokenSource({ baseUrl: BASE, tenant: "a" }), TypeError);
  assert.throws(() => createTokenSource(), TypeError);
});
