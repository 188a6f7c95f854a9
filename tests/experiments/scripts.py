"""Load a script under experiments/ as a module, for its tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def load_script(relative: str, name: str) -> ModuleType:
    """``experiments/<relative>`` imported as module ``name`` (registered in
    ``sys.modules``, so dataclasses and pickling in the script work)."""
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
