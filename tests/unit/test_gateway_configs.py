"""The shipped gateway configs (deploy/) keep client-supplied X-Authsvc-* headers and ambiguous
paths away from the data API (DESIGN §8).

nginx runs for real in tests/integration/test_nginx.py; the checks on its template here also
hold where nginx is not installed. Envoy and Traefik are not in Debian, so their files are
checked for the settings that matter, and Envoy's Lua header strip runs under LuaJIT (the
runtime Envoy embeds; scripts/bootstrap installs it) against a stand-in of Envoy's documented
header API, which refuses changes while iterating as Envoy does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
AUTHORITATIVE = ["Tenant", "Tenant-Id", "Sub", "Key-Id", "Fixed-Params"]
FORGED = [
    "X-Authsvc-Tenant",
    "x-authsvc-tenant-id",
    "X-AUTHSVC-KEY-ID",
    "x-authsvc-sub",
    "X-Authsvc-Fixed-Params",
    "x-authsvc-foo",
    "X-Authsvc-Key",
    "X_Authsvc_Tenant",
    "x_authsvc_key_id",
    "X-Authsvc_Sub",
    "x.authsvc.tenant",
]
KEPT = ["authorization", "accept", "x-other", "x-authsvcfoo", "xauthsvc-tenant", "authsvc-tenant"]


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


# --- nginx -------------------------------------------------------------------------------------


def nginx_server_block() -> str:
    text = (ROOT / "deploy/nginx/authsvc.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return code[code.index("server {") :]


def test_nginx_clears_every_client_authsvc_header_in_every_location() -> None:
    server = nginx_server_block()
    before_locations = server[: server.index("location")]
    assert re.search(r"^\s*more_clear_input_headers\s+'X-Authsvc-\*';", before_locations, re.M)
    assert re.search(r"^\s*underscores_in_headers\s+off;", before_locations, re.M)
    assert re.search(r"^\s*ignore_invalid_headers\s+on;", before_locations, re.M)


def test_nginx_sets_every_authoritative_header_from_authsvc_and_sends_the_raw_uri() -> None:
    server = nginx_server_block()
    for name in AUTHORITATIVE:
        var = "authsvc_" + name.lower().replace("-", "_")
        header = "x_authsvc_" + name.lower().replace("-", "_")
        assert re.search(rf"auth_request_set\s+\${var}\s+\$upstream_http_{header};", server)
        assert re.search(rf"proxy_set_header\s+X-Authsvc-{name}\s+\${var};", server)
    assert re.search(r"proxy_set_header\s+X-Original-URI\s+\$request_uri;", server)


# --- Envoy -------------------------------------------------------------------------------------


def envoy_hcm() -> dict[str, Any]:
    config = load("deploy/envoy/envoy.yaml")
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    assert hcm["name"] == "envoy.filters.network.http_connection_manager"
    return dict(hcm["typed_config"])


def test_envoy_normalises_the_path_before_any_filter_and_rejects_escaped_slashes() -> None:
    hcm = envoy_hcm()
    assert hcm["normalize_path"] is True
    assert hcm["merge_slashes"] is True
    assert hcm["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    underscores = hcm["common_http_protocol_options"]["headers_with_underscores_action"]
    assert underscores in ("DROP_HEADER", "REJECT_REQUEST")


def test_envoy_strips_client_headers_before_ext_authz_sets_the_authoritative_ones() -> None:
    filters = envoy_hcm()["http_filters"]
    assert [f["name"] for f in filters] == [
        "envoy.filters.http.lua",
        "envoy.filters.http.ext_authz",
        "envoy.filters.http.router",
    ]
    ext_authz = filters[1]["typed_config"]
    assert ext_authz["failure_mode_allow"] is False
    service = ext_authz["http_service"]
    assert service["authorization_request"]["allowed_headers"]["patterns"] == [
        {"exact": "authorization"}
    ]
    upstream = service["authorization_response"]["allowed_upstream_headers"]["patterns"]
    assert {p["exact"] for p in upstream} == {f"x-authsvc-{n.lower()}" for n in AUTHORITATIVE}


# Envoy's LuaJIT honours __pairs (Lua 5.2 behaviour); Debian's luajit does not, hence the shim.
HARNESS = """
local raw_pairs = pairs
function pairs(t)
  local mt = getmetatable(t)
  if mt and mt.__pairs then return mt.__pairs(t) end
  return raw_pairs(t)
end
local entries = {}
for i = 2, #arg do entries[#entries + 1] = {string.lower(arg[i]), "v"} end
local iterating = false
local headers = setmetatable({}, {
  __pairs = function()
    local i = 0
    iterating = true
    return function()
      i = i + 1
      if entries[i] == nil then iterating = false return nil end
      return entries[i][1], entries[i][2]
    end
  end,
  __index = {
    remove = function(_, name)
      assert(not iterating, "headers changed during iteration")
      local kept = {}
      for _, e in ipairs(entries) do
        if e[1] ~= string.lower(name) then kept[#kept + 1] = e end
      end
      entries = kept
    end,
  },
})
dofile(arg[1])
envoy_on_request({headers = function() return headers end})
for _, e in ipairs(entries) do print(e[1]) end
"""


def test_envoy_lua_strip_removes_every_authsvc_spelling_and_keeps_other_headers(
    tmp_path: Path,
) -> None:
    luajit = shutil.which("luajit")
    assert luajit is not None, "luajit is missing: apt-get install luajit (scripts/bootstrap)"
    lua = envoy_hcm()["http_filters"][0]["typed_config"]["default_source_code"]["inline_string"]
    (tmp_path / "strip.lua").write_text(lua)
    (tmp_path / "harness.lua").write_text(HARNESS)
    names = [*FORGED, *KEPT, "X-Authsvc-Tenant"]
    done = subprocess.run(
        [luajit, str(tmp_path / "harness.lua"), str(tmp_path / "strip.lua"), *names],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [n.lower() for n in KEPT]


# --- Traefik -----------------------------------------------------------------------------------


def traefik() -> dict[str, Any]:
    return dict(load("deploy/traefik/dynamic.yml")["http"])


def test_traefik_strips_every_authsvc_spelling_before_copying_the_answer() -> None:
    auth = traefik()["middlewares"]["authsvc-auth"]["forwardAuth"]
    regex = re.compile(auth["authResponseHeadersRegex"])
    assert all(regex.search(name) for name in FORGED)
    assert all(regex.search(f"X-Authsvc-{name}") for name in AUTHORITATIVE)
    assert not any(regex.search(name) for name in KEPT)
    assert not any(regex.search(name) for name in auth["authResponseHeaders"])


def test_traefik_sends_only_allow_listed_headers_and_sets_the_gateway_key_itself() -> None:
    http = traefik()
    auth = http["middlewares"]["authsvc-auth"]["forwardAuth"]
    assert auth["trustForwardHeader"] is False
    assert set(auth["authRequestHeaders"]) == {
        "Authorization",
        "X-Authsvc-Key",
        "X-Authsvc-Limit-Status",
    }
    assert http["routers"]["data-api"]["middlewares"] == [
        "authsvc-gateway-key",
        "authsvc-auth",
        "authsvc-strip-key",
    ]
    key = http["middlewares"]["authsvc-gateway-key"]["headers"]["customRequestHeaders"]
    assert "X-Authsvc-Key" in key
