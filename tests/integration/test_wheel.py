"""The wheel, installed: built from this checkout, installed with its pinned dependencies into a
fresh virtualenv, then ``authsvc db upgrade`` and ``authsvc db check`` of that virtualenv, run from
a directory outside the checkout, on an empty SQLite data dir and on an empty Postgres database.

It guards the packaging of the top-level ``migrations/`` folder (setup.py maps it to the package
``authsvc.migrations``): a revision file left out of the wheel shows as a revision list or head
that differs from the checkout's. The build runs on a copy of the checkout, so setuptools'
``build/`` folder (which keeps deleted files from one build to the next) stays out of the working
tree. The virtualenv has no pip of its own; this interpreter's pip installs into it
(``--python``), and compiles nothing: the first command writes the bytecode of what it imports,
which is a small part of what pip would compile. About 40 s in all, most of it pip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from authsvc.db import migrate
from tests.conftest import TEST_SECRET, empty_pg_database
from tests.server import clean_env

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[2]
NOT_BUILD_INPUT = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    ".authsvc",
)
PROBE = """
import json
import authsvc
from alembic.script import ScriptDirectory
from authsvc.db import migrate
scripts = ScriptDirectory.from_config(migrate.alembic_config())
print(json.dumps({
    "authsvc": authsvc.__file__,
    "scripts": str(migrate.script_directory()),
    "revisions": sorted(r.revision for r in scripts.walk_revisions()),
    "head": migrate.head_revision(),
}))
"""


def _pip(*args: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]


@pytest.fixture(scope="module")
def venv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel built from this checkout, and nothing of the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(CHECKOUT, source, ignore=NOT_BUILD_INPUT)
    _pip("wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(source))
    (wheel,) = (work / "dist").glob("authsvc-*.whl")
    target = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    _pip(
        "--python",
        str(target / "bin" / "python"),
        "install",
        "--no-compile",
        "--constraint",
        str(CHECKOUT / "constraints.txt"),
        str(wheel),
    )
    return target


def _run(
    cmd: list[str], cwd: Path, settings: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = clean_env(settings)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _script_files(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.suffix in (".py", ".mako") and "__pycache__" not in p.parts
    }


def test_wheel_ships_every_migration_of_the_checkout(venv_dir: Path, tmp_path: Path) -> None:
    out = _run([str(venv_dir / "bin" / "python"), "-c", PROBE], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    installed: dict[str, Any] = json.loads(out.stdout)
    assert Path(installed["authsvc"]).is_relative_to(venv_dir)
    scripts = Path(installed["scripts"])
    assert scripts.is_relative_to(venv_dir)
    checkout = ScriptDirectory.from_config(migrate.alembic_config())
    assert installed["revisions"] == sorted(r.revision for r in checkout.walk_revisions())
    assert installed["head"] == migrate.head_revision()
    assert _script_files(scripts) == _script_files(CHECKOUT / "migrations")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_installed_db_upgrade_migrates_an_empty_database_to_the_checkout_head(
    venv_dir: Path, backend: str, tmp_path: Path
) -> None:
    authsvc = str(venv_dir / "bin" / "authsvc")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    head = migrate.head_revision()
    with ExitStack() as stack:
        if backend == "postgres":
            url = stack.enter_context(empty_pg_database("authsvc_wheel"))
            settings = {"AUTHSVC_DATABASE_URL": url, "AUTHSVC_SECRET_KEY": TEST_SECRET}
        else:
            settings = {"AUTHSVC_DATA_DIR": str(tmp_path / "data")}
        up = _run([authsvc, "db", "upgrade"], outside, settings)
        assert up.returncode == 0, up.stderr
        after = _run([authsvc, "db", "check"], outside, settings)
        assert after.returncode == 0, after.stdout + after.stderr
        assert after.stdout.split() == ["current:", head, "head:", head]
    if backend == "sqlite":
        assert (tmp_path / "data" / "authsvc.db").is_file()
    assert list(outside.iterdir()) == []
