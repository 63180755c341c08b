"""The marketplace's layers, read from its imports (every import counts: top level,
inside functions, under ``if TYPE_CHECKING:``)."""

from __future__ import annotations

import ast
from pathlib import Path

MARKETPLACE = Path(__file__).resolve().parents[2] / "marketplace"

# The HTTP edges: the API itself, the composition root that mounts it, and the dashboard,
# another router on the same app that takes the service through the API's dependencies.
MAY_IMPORT_API = ("api/", "app.py", "dashboard/")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source file in `package` names in an import, as a dotted name
    (``from a import b`` names both ``a`` and ``a.b``: b may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def imports_of(path: Path) -> set[str]:
    package = ".".join(("marketplace", *path.relative_to(MARKETPLACE).parent.parts))
    return imported_modules(path.read_text(), package)


def importers_of(prefix: str) -> dict[str, list[str]]:
    """Module file (relative to marketplace/) -> the names it imports under `prefix`."""
    found: dict[str, list[str]] = {}
    for path in sorted(MARKETPLACE.rglob("*.py")):
        hits = sorted(n for n in imports_of(path) if n == prefix or n.startswith(prefix + "."))
        if hits:
            found[path.relative_to(MARKETPLACE).as_posix()] = hits
    return found


def test_only_the_http_edges_import_the_api():
    offenders = {
        module: names
        for module, names in importers_of("marketplace.api").items()
        if not module.startswith(MAY_IMPORT_API)
    }
    assert offenders == {}


# The domain packages: the API sits on them, never the other way round.
DOMAIN = ("compute/", "storage/", "chain/", "services/", "matching/", "packing/", "energy/")


def test_the_domain_packages_never_import_the_api():
    offenders = {
        module: names
        for module, names in importers_of("marketplace.api").items()
        if module.startswith(DOMAIN)
    }
    assert offenders == {}


def test_the_service_imports_no_background_worker():
    workers = (
        "marketplace.chain.indexer",
        "marketplace.compute.scheduler",
        "marketplace.services.prober",
    )
    imported = imports_of(MARKETPLACE / "service.py")
    assert sorted(n for n in imported if n.startswith(workers)) == []


def test_imports_inside_functions_type_checking_and_relative_ones_count():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from marketplace.api.schemas import JobPublic\n"
        "def late():\n    import marketplace.api.deps\n"
        "from ..api import public\n"
    )
    names = imported_modules(source, "marketplace.compute")
    assert {"marketplace.api.schemas", "marketplace.api.deps", "marketplace.api.public"} <= names


# What the marketplace's docstring calls pure: no network, database or web framework.
PURE = ("matching/", "packing/", "geo.py", "reputation.py", "energy/levels.py", "energy/sources.py")
IO_LIBRARIES = ("httpx", "requests", "urllib", "socket", "sqlalchemy", "web3", "fastapi")


def test_the_pure_modules_import_no_io_library():
    offenders = {}
    for path in sorted(MARKETPLACE.rglob("*.py")):
        module = path.relative_to(MARKETPLACE).as_posix()
        if module.startswith(PURE):
            hits = sorted(n for n in imports_of(path) if n.split(".")[0] in IO_LIBRARIES)
            if hits:
                offenders[module] = hits
    assert offenders == {}
