"""brownie's command line, with `run` done here so it works from any checkout path.

Brownie 1.22.2 imports a script given to `brownie run` as a dotted module path built
from the script's absolute path (``/tmp/tmp.x1/scripts/deploy.py`` becomes
``tmp.tmp.x1.scripts.deploy``), which fails whenever a parent folder's name contains a
dot; the function is compiled (mypyc), so it cannot be patched. `run` here does the same
steps (load the project, connect the network, call the script's function, disconnect)
and imports the script by file location. Every other command goes to brownie unchanged.

    tools/brownie run SCRIPT [FUNCTION] [--network NAME]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load_script(name: str) -> ModuleType:
    path = Path(name)
    if path.suffix != ".py":
        path = path.with_suffix(".py")
    if not path.is_absolute():
        path = ROOT / (path if path.parts[0] == "scripts" else Path("scripts") / path)
    if not path.exists():
        raise SystemExit(f"brownie run: no script {name!r} (looked for {path.relative_to(ROOT)})")
    spec = importlib.util.spec_from_file_location(f"scripts.{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="brownie run")
    parser.add_argument("script")
    parser.add_argument("function", nargs="?", default="main")
    parser.add_argument("--network", default="development")
    args = parser.parse_args(argv)

    import brownie

    project = brownie.project.load(str(ROOT))
    project._add_to_main_namespace()
    sys.path.insert(0, str(ROOT))
    brownie.network.connect(args.network)
    try:
        module = _load_script(args.script)
        func = getattr(module, args.function, None)
        if func is None:
            raise SystemExit(f"brownie run: {args.script} has no function {args.function!r}")
        print(f"Running '{args.script}::{args.function}' on {args.network}...")
        func()
    finally:
        brownie.network.disconnect()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2:]))
    from brownie._cli.__main__ import main

    sys.argv[0] = "brownie"
    sys.exit(main())
