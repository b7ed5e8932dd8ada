// Sign-in at the identity provider: OpenID Connect authorization code flow with PKCE (RFC 7636)
// for a public client. In a real app this file is the IdP's own SDK (auth0-spa-js,
// @clerk/clerk-js, oidc-client-ts ...); the integration in app.js only needs a function that
// returns the IdP's current JWT.
//
// The tokens stay in sessionStorage: per browser tab, gone when the tab closes. A new sign-in
// always shows the login form (prompt=login) so the demo can switch users.

const STORE = "example.idp.tokens";
const PENDING = "example.idp.pending";

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function discover(issuer) {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`IdP discovery failed: HTTP ${response.status}`);
  return response.json();
}

export function decodeJwt(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export async function signIn(config) {
  const metadata = await discover(config.issuer);
  const verifier = randomString(32);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: `${location.origin}/`,
    scope: config.idpScope,
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: "S256",
    prompt: "login",
  }).toString();
  location.assign(url.toString());
}

// After the IdP redirected back with ?code=...: redeem the code once, keep the tokens, clean
// the address bar. Returns without doing anything on a normal page load.
export async function finishSignIn(config) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return;
  history.replaceState(null, "", location.pathname);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null");
  sessionStorage.removeItem(PENDING);
  if (params.has("error")) {
    throw new Error(`sign-in refused by the IdP: ${params.get("error")}`);
  }
  if (pending === null || params.get("state") !== pending.state) {
    throw new Error("sign-in answer does not match a sign-in of this tab (state)");
  }
  if (params.has("iss") && params.get("iss") !== config.issuer) {
    throw new Error("sign-in answer comes from another issuer (RFC 9207)");
  }
  const metadata = await discover(config.issuer);
  const response = await fetch(metadata.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: `${location.origin}/`,
      client_id: config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok) {
    throw new Error(`IdP token endpoint: ${tokens.error} ${tokens.error_description ?? ""}`);
  }
  sessionStorage.setItem(STORE, JSON.stringify({
    accessToken: tokens.access_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  }));
}

// The IdP's access token (a JWT) while it is valid, else null.
export function idpAccessToken() {
  const stored = JSON.parse(sessionStorage.getItem(STORE) ?? "null");
  if (stored === null || Date.now() >= stored.expiresAt) return null;
  return stored.accessToken;
}

export function signOut() {
  sessionStorage.removeItem(STORE);
}
