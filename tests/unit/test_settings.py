from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.errors import ConfigurationError
from authsvc.ids import new_id, time_of
from authsvc.settings import Settings


def test_empty_environment_gives_embedded_defaults() -> None:
    s = Settings.from_env({})
    assert s.embedded
    assert s.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert s.effective_base_url == "http://127.0.0.1:8000"
    assert not s.base_url_guessed


@pytest.mark.parametrize(
    ("host", "base", "guessed"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000", False),
        ("localhost", "http://localhost:9000", False),
        ("10.1.2.3", "http://10.1.2.3:9000", False),
        ("auth.internal", "http://auth.internal:9000", False),
        ("::1", "http://[::1]:9000", False),
        ("2001:db8::7", "http://[2001:db8::7]:9000", False),
        ("fe80::1%eth0", "http://[fe80::1%25eth0]:9000", False),
        ("0.0.0.0", "http://localhost:9000", True),  # noqa: S104
        ("::", "http://localhost:9000", True),
    ],
)
def test_default_base_url_keeps_the_bound_host_and_brackets_ipv6(
    host: str, base: str, guessed: bool
) -> None:
    s = Settings(host=host, port=9000)
    assert s.effective_base_url == base
    assert s.base_url_guessed is guessed


def test_base_url_setting_wins_over_a_wildcard_bind() -> None:
    s = Settings.from_env({"AUTHSVC_BASE_URL": "https://auth.example.com/", "AUTHSVC_HOST": "::"})
    assert s.effective_base_url == "https://auth.example.com"
    assert not s.base_url_guessed


def test_environment_values_are_typed() -> None:
    s = Settings.from_env(
        {
            "AUTHSVC_PORT": "9000",
            "AUTHSVC_RATELIMIT_FAIL_OPEN": "false",
            "AUTHSVC_REVOCATION_POLL_S": "0.5",
            "AUTHSVC_DATA_DIR": "/tmp/x",
            "AUTHSVC_PREVIOUS_SECRET_KEYS": "a,b",
        }
    )
    assert (s.port, s.ratelimit_fail_open, s.revocation_poll_s) == (9000, False, 0.5)
    assert s.data_dir == Path("/tmp/x")
    assert s.previous_secret_keys == ("a", "b")


def test_postgres_without_secret_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env({"AUTHSVC_DATABASE_URL": "postgresql+asyncpg://x/y"})


@pytest.mark.parametrize(
    "env",
    [
        {"AUTHSVC_PORT": "eighty"},
        {"AUTHSVC_SECRET_KEY": "short"},
        {"AUTHSVC_RATELIMIT_FAIL_OPEN": "maybe"},
        {"AUTHSVC_SIGNING_ALG": "HS256"},
    ],
)
def test_bad_values_are_configuration_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


def test_ids_sort_by_time_and_carry_it() -> None:
    a, b = new_id("key", 1_700_000_000.0), new_id("key", 1_700_000_000.5)
    assert a < b
    assert time_of(a) == 1_700_000_000.0
    assert time_of("nonsense") is None


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    from authsvc.settings import settings_doc

    missing = [name for name, _ in settings_doc() if name not in readme]
    assert not missing, f"README configuration table lacks {missing}"
