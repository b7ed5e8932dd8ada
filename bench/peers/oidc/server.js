// Peer OAuth server for bench/run_all.py: panva's oidc-provider (OpenID Certified), one
// confidential client allowed the client_credentials grant (client_secret_basic), and two
// resource servers (RFC 8707 resource indicators):
//   urn:bench:jwt     access tokens are ES256-signed JWTs (RFC 9068), like authsvc's;
//   urn:bench:opaque  opaque access tokens, the only kind oidc-provider can introspect
//                     (it refuses to introspect its own JWT access tokens).
// Storage is the library's default in-memory adapter (no database). Usage:
//   PORT=3000 node server.js              -> prints "listening <url>" when ready
//   PORT=3000 WORKERS=2 node server.js    -> node's cluster module: WORKERS processes share the
//                                            port and one signing key (client_credentials JWTs
//                                            need no shared storage; opaque tokens would)
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 3000);
const workers = Number(process.env.WORKERS || 1);
const issuer = `http://127.0.0.1:${port}`;

if (workers > 1 && cluster.isPrimary) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = JSON.stringify(privateKey.export({ format: 'jwk' }));
  let ready = 0;
  for (let i = 0; i < workers; i += 1) {
    cluster.fork({ BENCH_SIGNING_JWK: jwk }).on('message', (msg) => {
      ready += msg === 'listening' ? 1 : 0;
      if (ready === workers) console.log(`listening ${issuer} (${workers} processes)`);
    });
  }
  cluster.on('exit', (_worker, code) => process.exit(code ?? 1));
} else {
  serve();
}

function serve() {
const privateJwk = process.env.BENCH_SIGNING_JWK
  ? JSON.parse(process.env.BENCH_SIGNING_JWK)
  : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const signingKey = { ...privateJwk, kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const resources = {
  'urn:bench:jwt': { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } },
  'urn:bench:opaque': { accessTokenFormat: 'opaque' },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret-0123456789abcdef0123456789',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      introspection_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: ['pipes:read'],
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:bench:jwt',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        const info = resources[resourceIndicator];
        if (!info) throw new Error(`unknown resource ${resourceIndicator}`);
        return { scope: 'pipes:read', audience: resourceIndicator, accessTokenTTL: 900, ...info };
      },
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  if (cluster.isWorker) process.send('listening');
  else console.log(`listening ${issuer}`);
});
}
