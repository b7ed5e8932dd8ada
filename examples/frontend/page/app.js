// The example page: sign in at the IdP, exchange its token at authsvc, read the data API.
// The part a customer copies is marked "integration"; the rest renders the demo.
import { decodeJwt, finishSignIn, idpAccessToken, signIn, signOut } from "./login.js";

const $ = (id) => document.getElementById(id);

// ---- integration: IdP token -> authsvc data token -> data API ----------------------------
async function rowsOf(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${body.error ?? response.statusText}`);
  return body.data; // only the rows of the user's org: the gateway applies org_id
}

async function ordersClient(config) {
  // A real page imports it statically: import { createTokenSource } from "https://auth.example.com/sdk/authsvc.js"
  const { createTokenSource } = await import(`${config.authsvc}/sdk/authsvc.js`);
  const dataTokens = createTokenSource({
    baseUrl: config.authsvc, //                 where authsvc runs
    tenant: config.tenant, //                   the tenant's slug
    getSubjectToken: () => idpAccessToken(), // the IdP's JWT (auth0.getTokenSilently(), ...)
    scope: config.dataScope, //                 "PIPES:READ:orders": only what the page needs
  });
  const url = `${config.dataApi}/v0/pipes/orders.json`;
  return {
    dataTokens,
    url,
    // Bearer <data token> added; after a 401 the token source exchanges again and retries once.
    load: async () => rowsOf(await dataTokens.fetch(url)),
  };
}
// ---- end of the integration ----------------------------------------------------------------

// The same call with the cached data token and no retry: shows what the gateway says about it.
async function callOnce(orders) {
  const token = await orders.dataTokens.getToken();
  return rowsOf(await fetch(orders.url, { headers: { Authorization: `Bearer ${token}` } }));
}

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(item);
}

let runs = 0;

function setStatus(state, text) {
  if (state === "ok" || state === "error") $("status").dataset.run = String(++runs);
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function renderRows(rows) {
  const body = $("orders").tBodies[0];
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.org = String(row.org_id);
      for (const key of ["id", "org_id", "customer", "product", "amount", "status"]) {
        const td = document.createElement("td");
        td.textContent = key === "amount" ? row.amount.toFixed(2) : String(row[key]);
        td.className = key;
        tr.append(td);
      }
      return tr;
    }),
  );
}

let shownJti = null;

async function showDataToken(orders) {
  const claims = decodeJwt(await orders.dataTokens.getToken());
  const grant = (claims.scopes ?? [])[0] ?? {};
  $("data-sub").textContent = claims.sub;
  $("data-scope").textContent = claims.scope;
  $("data-filter").textContent = JSON.stringify(grant.fixed_params ?? {});
  $("data-jti").textContent = claims.jti;
  $("data-exp").textContent = new Date(claims.exp * 1000).toLocaleTimeString();
  if (claims.jti !== shownJti) log(`authsvc issued data token ${claims.jti} (exchange)`);
  shownJti = claims.jti;
}

async function run(orders, label, call) {
  setStatus("loading", `${label} ...`);
  try {
    const rows = await call();
    renderRows(rows);
    setStatus("ok", `${label}: ${rows.length} rows`);
    log(`${label}: ${rows.length} rows`);
    await showDataToken(orders);
  } catch (error) {
    renderRows([]);
    const text = `${label} failed: ${error.error ? `${error.error} (HTTP ${error.status}) ` : ""}${error.message}`;
    setStatus("error", text);
    log(text);
  }
}

async function main() {
  const config = await (await fetch("/config.json")).json();
  $("sign-in").onclick = () => signIn(config).catch((e) => setStatus("error", e.message));
  $("sign-out").onclick = () => {
    signOut();
    location.reload();
  };
  await finishSignIn(config);
  const token = idpAccessToken();
  document.body.dataset.signedIn = String(token !== null);
  if (token === null) {
    setStatus("idle", "Sign in at the identity provider to see your organisation's orders.");
    return;
  }
  const idp = decodeJwt(token);
  $("idp-sub").textContent = idp.sub;
  $("idp-org").textContent = String(idp.org_id);
  $("idp-aud").textContent = [idp.aud].flat().join(" ");
  const orders = await ordersClient(config);
  const load = () => run(orders, "Load orders (token source fetch)", () => orders.load());
  $("load").onclick = load;
  $("check").onclick = () =>
    run(orders, "Call with the cached data token, no retry", () => callOnce(orders));
  await load();
}

main().catch((error) => setStatus("error", `The page could not start: ${error.message}`));
