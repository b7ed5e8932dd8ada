// Verify an authsvc access token the way a Node.js resource server would, with jose:
// keys from the tenant's JWKS URL, RFC 9068 explicit typing, issuer and audience pinned.
// Usage: node verify.mjs <jwks_url> <issuer> <audience> <token>
// Prints the verified payload as JSON; exits 1 with the jose error code on refusal.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksUrl, issuer, audience, token] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUrl));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: "at+jwt",
    algorithms: ["ES256", "RS256", "EdDSA"],
  });
  console.log(JSON.stringify({ ok: true, alg: protectedHeader.alg, payload }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, code: err.code ?? String(err) }));
  process.exit(1);
}
