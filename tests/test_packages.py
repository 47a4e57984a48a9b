"""The packages are the pipeline's stages, and imports run one way: a module imports only
modules of its own stage or of the stages below it (the README's listing, top down)."""

from __future__ import annotations

import ast

from conftest import REPO

SRC = REPO / "src" / "rmg_lake"
# From the top: each stage may import those after it, never those before it.
STAGES = (
    ("__main__",), ("cli",), ("__init__",), ("watch",), ("deliver",),
    ("lake", "pilot_import", "results"), ("derive",), ("corrections",), ("store",),
    ("sources",), ("sample",), ("contract",), ("config", "errors", "_internal"),
)


def _stage(module: str) -> int:
    """The stage of `rmg_lake.<module>` (dotted below the package), 0 at the top."""
    head = module.split(".")[0]
    return next(n for n, names in enumerate(STAGES) if head in names)


def _imports() -> list[tuple[str, str]]:
    """(importer, imported) for every import of one of our modules, anywhere in a file."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        importer = ".".join(parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{importer}: a relative import"  # (none: absolute)
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [(importer, "__init__" if name == "rmg_lake" else
                       name.removeprefix("rmg_lake.")) for name in names
                      if name == "rmg_lake" or name.startswith("rmg_lake.")]
    return found


def test_every_module_has_a_stage() -> None:
    assert {_stage(".".join(p.relative_to(SRC).with_suffix("").parts))
            for p in SRC.rglob("*.py")} == set(range(len(STAGES)))


def test_imports_run_down_the_pipeline() -> None:
    imports = _imports()
    assert len(imports) > 200  # (the walk finds them, function-level imports too)
    upward = [(a, b) for a, b in imports if _stage(b) < _stage(a)]
    assert upward == []


def test_few_files_are_left_at_the_top() -> None:
    assert len(list(SRC.glob("*.py"))) <= 10
