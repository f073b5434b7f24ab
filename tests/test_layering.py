"""The core never imports a framework folder or a framework: the import graph, read from source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "geowarp"
ADAPTERS = ("torch", "jax", "tensorflow", "keras", "dask")
FRAMEWORKS = ("torch", "jax", "jaxlib", "tensorflow", "keras", "dask", "distributed")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _core_modules() -> list[Path]:
    return sorted(
        path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] not in ADAPTERS
    )


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, at any depth of the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_core_is_found():
    names = {_module_name(path) for path in _core_modules()}
    assert {"geowarp", "geowarp.warp", "geowarp.backends", "geowarp.samplers._sample"} <= names
    assert not any(name.startswith("geowarp.torch") for name in names)


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_no_adapter_and_no_framework(path):
    for module in _imports(path):
        top = module.split(".")[0]
        assert top not in FRAMEWORKS, f"{path.name} imports {module}"
        parts = module.split(".")
        assert not (parts[0] == "geowarp" and len(parts) > 1 and parts[1] in ADAPTERS), (
            f"{path.name} imports the adapter module {module}"
        )
    # nor by name, through importlib: adapters are found through the backend registry
    text = path.read_text()
    for adapter in ADAPTERS:
        assert f'"geowarp.{adapter}' not in text, f"{path.name} names geowarp.{adapter}"


def test_the_reader_sees_relative_imports():
    # a check of the checker: warp.py imports the samplers through a relative import
    assert "geowarp.samplers.sample" in _imports(PACKAGE / "warp.py")
    assert "geowarp.backends" in _imports(PACKAGE / "warp.py")
