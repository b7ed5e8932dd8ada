// Identity provider of examples/frontend: panva's oidc-provider (OpenID Certified) standing in for
// the customer's Auth0 / Clerk / Keycloak. Two users, each in one organisation:
//   alice -> org_id 42,  bob -> org_id 7   (the devInteractions login form; any password).
// One public client, the example page: authorization code + PKCE (S256), no client secret, its
// origin registered as redirect URI (so oidc-provider answers CORS on its token endpoint).
//
// The subject token for authsvc is the ACCESS token, not the ID token: with resource indicators
// (RFC 8707) every access token is issued for the resource AUDIENCE, as an RS256-signed JWT
// (RFC 9068, typ "at+jwt") carrying `org_id` (extraTokenClaims). That is what a real IdP gives a
// single-page app for an API (Auth0's getTokenSilently(), an Okta/Keycloak access token), and
// its `aud` is the API, not the page: authsvc's trusted issuer lists AUDIENCE.
//
// Consent is implied for this first-party page (loadExistingGrant grants the requested scopes),
// so a login is one form. Keys are generated at each start and storage is in memory: restarting
// the IdP logs everybody out, which is fine for a demo.
//
// Usage: PORT=8611 PAGE_ORIGIN=http://127.0.0.1:8610 AUDIENCE=urn:... node server.js
//        -> prints one JSON line {"issuer": ..., "audience": ...} once it is listening.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 8611);
const pageOrigin = process.env.PAGE_ORIGIN || 'http://127.0.0.1:8610';
const audience = process.env.AUDIENCE || 'urn:authsvc-example:data';
const issuer = `http://127.0.0.1:${port}`;
const DATA_SCOPE = 'orders:read';

const ACCOUNTS = {
  alice: { name: 'Alice', org_id: 42 },
  bob: { name: 'Bob', org_id: 7 },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'example-rs256', alg: 'RS256', use: 'sig' };

function sameOrigin(uri, origin) {
  return URL.parse(uri)?.origin === origin;
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'orders-page',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [`${pageOrigin}/`],
      post_logout_redirect_uris: [`${pageOrigin}/`],
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: ['openid'],
  cookies: { keys: ['example-only-cookie-key-0123456789abcdef'] },
  pkce: { required: () => true },
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return { accountId: id, claims: () => ({ sub: id, ...account }) };
  },
  // RFC 9068 §2.2.3.1 allows further claims in a JWT access token: the row filter's source.
  async extraTokenClaims(ctx, token) {
    const account = token.accountId ? ACCOUNTS[token.accountId] : undefined;
    return account ? { org_id: account.org_id } : undefined;
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid');
    grant.addResourceScope(audience, DATA_SCOPE);
    await grant.save();
    return grant;
  },
  clientBasedCORS(ctx, origin, client) {
    return client.redirectUris.some((uri) => sameOrigin(uri, origin));
  },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== audience) throw new Error(`unknown resource ${resourceIndicator}`);
        return {
          scope: DATA_SCOPE,
          audience,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer, audience }));
});
