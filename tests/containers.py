"""The two container programs, importable side by side in one test process.

Both are called ``entrypoint.py``: a plain ``import entrypoint`` would give whichever test module
imported first its own, so each is loaded from its file under its own name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

CONTAINERS = Path(__file__).resolve().parents[1] / "files" / "containers"


def load_entrypoint(container: str) -> ModuleType:
    """``files/containers/<container>/entrypoint.py`` as the module ``<container>_entrypoint``."""
    name = f"{container}_entrypoint"
    if name not in sys.modules:
        directory = CONTAINERS / container
        sys.path.insert(0, str(directory))  # its sibling modules (the aggregator's stores, ...)
        spec = importlib.util.spec_from_file_location(name, directory / "entrypoint.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
