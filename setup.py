"""Package list for setuptools; everything else is declared in pyproject.toml.

The Alembic scripts live in the top-level ``migrations/`` folder (DESIGN.md §7) but must ship in
the wheel, so that an installed ``authsvc db upgrade`` finds them. ``package_dir`` maps that folder
to the subpackage ``authsvc.migrations``. pyproject's ``packages.find`` cannot express this (it only
finds a package inside its parent's folder), hence this file. The revision files are modules of
``authsvc.migrations.versions``, so a new one ships without any file list to update.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["authsvc", "authsvc.*"]),
        "authsvc.migrations",
        "authsvc.migrations.versions",
    ],
    package_dir={"authsvc.migrations": "migrations"},
)
