"""The packages of plugins/module_utils import one way, and the data plane ships what it imports.

``results`` is the lowest layer, ``run`` may use it, ``aws`` stands apart (see each package's
docstring). The aggregator's and load generator's images and the orchestrator Lambda copy a few
files of these packages: each must hold every file its code imports, directly or through another.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[4]
MODULE_UTILS = REPO / "plugins" / "module_utils"
FQCN = "ansible_collections.constellation.loadtest.plugins.module_utils"
PACKAGES = ("aws", "run", "results")
# What each package may import of ours, besides itself.
MAY_IMPORT = {"results": set(), "run": {"results"}, "aws": set()}
# Shipped alone (in the Lambda, in the load generator's image): they import nothing of ours.
STANDALONE = ("run/orchestrator_state.py", "run/orchestrator_client.py", "run/exit_codes.py")


def imported_files(path: Path) -> set[str]:
    """The module_utils files (``<package>/<name>.py``) that ``path`` imports, any spelling of import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = path.parent.name if path.parent.parent == MODULE_UTILS else None
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and here:
                base = [here] + (node.module.split(".") if node.module else [])
            elif node.level == 2 and here:
                base = node.module.split(".") if node.module else []
            elif node.level == 0 and node.module:
                base = node.module.split(".")
                if node.module.startswith(FQCN + ".") or node.module == FQCN:
                    base = node.module[len(FQCN) + 1:].split(".") if node.module != FQCN else []
                elif base[0] not in PACKAGES:
                    continue
            else:
                continue
            candidates = [base + [alias.name] for alias in node.names] if len(base) == 1 else [base]
            for parts in candidates:
                if len(parts) >= 2 and (MODULE_UTILS / parts[0] / f"{parts[1]}.py").is_file():
                    found.add(f"{parts[0]}/{parts[1]}.py")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in PACKAGES and len(parts) >= 2:
                    found.add(f"{parts[0]}/{parts[1]}.py")
    return found


def closure(files: set[str]) -> set[str]:
    """``files`` and every module_utils file they import, transitively."""
    todo, seen = list(files), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported_files(MODULE_UTILS / name))
    return seen


MODULE_FILES = sorted(str(path.relative_to(MODULE_UTILS)) for path in MODULE_UTILS.glob("*/*.py"))


def test_no_module_is_left_outside_a_package():
    assert sorted(path.name for path in MODULE_UTILS.glob("*.py")) == []
    assert {path.parent.name for path in MODULE_UTILS.glob("*/*.py")} == set(PACKAGES)


@pytest.mark.parametrize("name", MODULE_FILES)
def test_imports_run_one_way(name):
    package = name.split("/")[0]
    allowed = MAY_IMPORT[package] | {package}
    wrong = {imported for imported in imported_files(MODULE_UTILS / name) if imported.split("/")[0] not in allowed}
    assert not wrong, f"{name} ({package}) imports {sorted(wrong)}; {package} may import only {sorted(allowed)}"


@pytest.mark.parametrize("name", STANDALONE)
def test_what_ships_alone_imports_nothing_of_ours(name):
    assert imported_files(MODULE_UTILS / name) == set()


def test_the_import_reader_sees_every_spelling():
    """A check that found nothing would pass every test above: it must find each kind of import."""
    assert imported_files(MODULE_UTILS / "run" / "task_contract.py") >= {"run/config.py", "results/progress.py"}
    assert "run/load_tasks.py" in imported_files(REPO / "plugins" / "modules" / "ecs_load_tasks.py")
    assert "results/histogram.py" in imported_files(REPO / "files" / "containers" / "aggregator" / "intervals.py")
    assert "run/orchestrator_state.py" in imported_files(REPO / "files" / "lambda" / "orchestrator.py")


def copied_by(dockerfile: Path) -> set[str]:
    """The module_utils files a Dockerfile copies into its image."""
    text = dockerfile.read_text().replace("\\\n", " ")
    return {
        match.group(1)
        for line in text.splitlines()
        if line.startswith("COPY ")
        for match in re.finditer(r"plugins/module_utils/(\w+/\w+\.py)", line)
    }


@pytest.mark.parametrize("container", ["aggregator", "load_generator"])
def test_each_image_copies_what_its_code_imports(container):
    directory = REPO / "files" / "containers" / container
    needed = closure(set().union(*(imported_files(path) for path in directory.glob("*.py"))))
    assert needed, f"{container} imports nothing of module_utils: the reader is wrong"
    copied = copied_by(directory / "Dockerfile")
    packages = {name.split("/")[0] for name in needed}
    assert needed | {f"{package}/__init__.py" for package in packages} <= copied


def test_the_orchestrator_package_holds_what_the_handler_imports():
    tasks = yaml.safe_load((REPO / "roles" / "home" / "tasks" / "present.yml").read_text())
    package = next(task for task in tasks if "constellation.loadtest.lambda_package" in task)
    names = {
        entry.get("name") or Path(entry["src"]).name: entry["src"].split("/plugins/module_utils/")[-1]
        for entry in package["constellation.loadtest.lambda_package"]["files"]
    }
    needed = closure(imported_files(REPO / "files" / "lambda" / "orchestrator.py"))
    # Each file in the zip under the name it is imported by, with its package's __init__.py.
    for name in needed | {f"{path.split('/')[0]}/__init__.py" for path in needed}:
        assert names.get(name) == name, f"the orchestrator package lacks {name}: {names}"
