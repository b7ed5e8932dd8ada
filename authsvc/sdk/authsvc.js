// authsvc browser client: exchange an identity-provider token for a short-lived data token.
//
// An ES module without dependencies or build step; runs in browsers and in Node >= 20 (it
// uses the global fetch, Headers, Request and URLSearchParams).
//
//   import { createTokenSource } from "https://auth.example.com/sdk/authsvc.js";
//   const source = createTokenSource({
//     baseUrl: "https://auth.example.com",
//     tenant: "acme",
//     getSubjectToken: () => auth0.getTokenSilently(),   // the IdP's JWT
//     scope: "PIPES:READ:orders",                          // optional, down-scopes
//   });
//   const response = await source.fetch("https://api.example.com/v0/pipes/orders.json");
//
// getToken() returns a cached data token and exchanges a fresh subject token for a new one
// (RFC 8693, POST {baseUrl}/t/{tenant}/oauth2/token) once less than max(30 s, lifetime / 5)
// remains; for lifetimes under a minute that margin is capped at half the lifetime, so a
// short-lived token is not exchanged on every call. One exchange is in flight at a time:
// concurrent callers share it. A failed exchange is not cached: the next call tries again.
// The exchange sends no cookies (credentials: "omit"), is never cached by the browser and
// follows no redirect (the subject token is posted to the token endpoint and nowhere else).
//
// fetch(input, init) is the global fetch with `Authorization: Bearer <data token>` added
// (every other header kept; a Request or a URL string). On a 401 it drops that token, gets a
// fresh one and retries exactly once; the second answer is returned whatever it is. A body
// given as a ReadableStream cannot be sent twice, so such a request is not retried.
//
// Errors of the exchange are TokenExchangeError with `error` (the RFC 6749 §5.2 code, e.g.
// "invalid_grant", or "invalid_response" when the server's answer is not one) and `status`
// (the HTTP status, 0 when there was no answer). Network failures of fetch itself propagate
// as they are.

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const MIN_MARGIN_MS = 30_000;

export class TokenExchangeError extends Error {
  constructor(message, { error, status, description } = {}) {
    super(message);
    this.name = "TokenExchangeError";
    this.error = error ?? "invalid_response";
    this.status = status ?? 0;
    this.description = description;
  }
}

function requireString(value, name) {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`createTokenSource: ${name} must be a non-empty string`);
  }
  return value;
}

function isRequest(input) {
  return typeof Request !== "undefined" && input instanceof Request;
}

function isStream(body) {
  return typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

async function discard(response) {
  try {
    await response.body?.cancel();
  } catch {
    // the body is only being thrown away
  }
}

function refreshMargin(lifetimeMs) {
  return Math.min(Math.max(MIN_MARGIN_MS, lifetimeMs / 5), lifetimeMs / 2);
}

export function createTokenSource(options) {
  const { baseUrl, tenant, getSubjectToken, scope, audience, fetch: fetchOption, now } =
    options ?? {};
  requireString(baseUrl, "baseUrl");
  requireString(tenant, "tenant");
  if (audience !== undefined && audience !== null && typeof audience !== "string") {
    throw new TypeError("createTokenSource: audience must be one string");
  }
  if (typeof getSubjectToken !== "function") {
    throw new TypeError("createTokenSource: getSubjectToken must be a function");
  }
  // Called through globalThis so that a browser's window.fetch keeps its receiver.
  const send = fetchOption ?? ((input, init) => globalThis.fetch(input, init));
  const clock = now ?? (() => Date.now());
  const endpoint = `${baseUrl.replace(/\/+$/, "")}/t/${encodeURIComponent(tenant)}/oauth2/token`;

  let cached = null; // { token, expiresAt, margin }
  let inflight = null;

  async function exchange() {
    const subjectToken = await getSubjectToken();
    if (typeof subjectToken !== "string" || subjectToken === "") {
      throw new TokenExchangeError("getSubjectToken() returned no token", {
        error: "invalid_request",
      });
    }
    const form = new URLSearchParams();
    form.set("grant_type", TOKEN_EXCHANGE);
    form.set("subject_token", subjectToken);
    form.set("subject_token_type", JWT_TOKEN_TYPE);
    if (scope !== undefined && scope !== null) {
      form.set("scope", Array.isArray(scope) ? scope.join(" ") : String(scope));
    }
    if (audience !== undefined && audience !== null) {
      // One audience: the token endpoint refuses a repeated form parameter (RFC 6749 §3.2).
      form.set("audience", String(audience));
    }
    const started = clock();
    const response = await send(endpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Accept: "application/json",
      },
      body: form.toString(),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
    const data = await readJson(response);
    if (!response.ok) {
      const error = typeof data?.error === "string" ? data.error : "invalid_response";
      const description =
        typeof data?.error_description === "string" ? data.error_description : undefined;
      throw new TokenExchangeError(
        description ?? `token exchange failed with HTTP ${response.status}`,
        { error, status: response.status, description },
      );
    }
    const token = data?.access_token;
    const expiresIn = data?.expires_in;
    if (
      typeof token !== "string" ||
      token === "" ||
      typeof data?.token_type !== "string" ||
      data.token_type.toLowerCase() !== "bearer" ||
      typeof expiresIn !== "number" ||
      !Number.isFinite(expiresIn) ||
      expiresIn <= 0
    ) {
      throw new TokenExchangeError("the token endpoint answered without a usable token", {
        error: "invalid_response",
        status: response.status,
      });
    }
    const lifetimeMs = expiresIn * 1000;
    return { token, expiresAt: started + lifetimeMs, margin: refreshMargin(lifetimeMs) };
  }

  function getToken() {
    if (cached !== null && clock() < cached.expiresAt - cached.margin) {
      return Promise.resolve(cached.token);
    }
    if (inflight === null) {
      inflight = exchange()
        .then((entry) => {
          cached = entry;
          return entry.token;
        })
        .finally(() => {
          inflight = null;
        });
    }
    return inflight;
  }

  function drop(token) {
    if (cached !== null && cached.token === token) {
      cached = null;
    }
  }

  function authorized(input, init, token) {
    const source = init?.headers ?? (isRequest(input) ? input.headers : undefined);
    const headers = new Headers(source);
    headers.set("Authorization", `Bearer ${token}`);
    return [isRequest(input) ? input.clone() : input, { ...init, headers }];
  }

  async function authorizedFetch(input, init) {
    const token = await getToken();
    const response = await send(...authorized(input, init, token));
    if (response.status !== 401 || isStream(init?.body)) {
      return response;
    }
    await discard(response);
    drop(token);
    const fresh = await getToken();
    return send(...authorized(input, init, fresh));
  }

  return { getToken, fetch: authorizedFetch };
}
