// Verify many authsvc access tokens with jose in one process.
// stdin: {"jwks": {"keys": [...]}, "issuer": "...", "audience": "...", "tokens": ["..."]}
// stdout: one JSON line {"results": [...]}, one entry per token, in order:
//   {"ok": true, "header": {...}, "payload": {...}, "raw": "<base64 of the payload octets>"}
//   {"ok": false, "code": "<jose error code>"}
// compactVerify gives the signed octets as received; jwtVerify the claims after jose's own
// JWT checks (RFC 9068 typ, issuer, audience, exp/nbf/iat).
import { compactVerify, createLocalJWKSet, jwtVerify } from "jose";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { jwks, issuer, audience, tokens } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const keys = createLocalJWKSet(jwks);
const algorithms = ["ES256", "RS256", "EdDSA"];

const results = [];
for (const token of tokens) {
  try {
    const jws = await compactVerify(token, keys, { algorithms });
    const jwt = await jwtVerify(token, keys, { issuer, audience, typ: "at+jwt", algorithms });
    results.push({
      ok: true,
      header: jws.protectedHeader,
      payload: jwt.payload,
      raw: Buffer.from(jws.payload).toString("base64"),
    });
  } catch (err) {
    results.push({ ok: false, code: err.code ?? String(err) });
  }
}
process.stdout.write(JSON.stringify({ results }) + "\n");
