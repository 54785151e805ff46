"""Finds fixed sleeps in the tests: every sleep must be the pause of a poll with a deadline.

A test that sleeps a fixed time to let something happen is slow when the machine is fast and
flaky when it is slow (DESIGN.md, "Time in tests is compressed"); it waits for the event instead,
polling with a deadline. This check allows a ``sleep`` call only inside a ``while`` loop whose
condition or body looks at a deadline (a name containing ``deadline``, or ``monotonic()``), as in

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(...)
        time.sleep(0.05)

A sleep that paces a simulated device or a fault timeline (not a wait for an event) says so with
a ``# pacing: <why>`` comment on its line.

Run as ``python -m tests.sleep_check [paths...]`` (default: tests/); tests/test_sleep_check.py
runs it over the tests in the quick lane.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACING = "# pacing:"
SLEEP_MODULES = {"time", "asyncio"}


@dataclass(frozen=True)
class FixedSleep:
    """A sleep outside a deadline poll."""

    path: Path
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: fixed sleep outside a deadline poll: {self.code}"


def _is_sleep(call: ast.Call, sleep_names: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "sleep":
        return isinstance(func.value, ast.Name) and func.value.id in SLEEP_MODULES
    return isinstance(func, ast.Name) and func.id in sleep_names


def _looks_at_a_deadline(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and "deadline" in sub.id.lower():
            return True
        if isinstance(sub, ast.Attribute) and (
            sub.attr == "monotonic" or "deadline" in sub.attr.lower()
        ):
            return True
    return False


def _imported_sleeps(tree: ast.Module) -> set[str]:
    """Local names bound to time.sleep/asyncio.sleep by `from time import sleep [as x]`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in SLEEP_MODULES:
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "sleep"}
    return names


def fixed_sleeps(source: str, path: Path = Path("<string>")) -> Iterator[FixedSleep]:
    """The sleeps in ``source`` that are not inside a deadline poll nor marked as pacing."""
    tree = ast.parse(source, str(path))
    lines = source.splitlines()
    sleep_names = _imported_sleeps(tree)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _is_sleep(node, sleep_names)):
            continue
        line = lines[node.lineno - 1]
        if PACING in line:
            continue
        ancestor = parents.get(node)
        while ancestor is not None and not isinstance(
            ancestor, ast.While | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        ):
            ancestor = parents.get(ancestor)
        if isinstance(ancestor, ast.While) and _looks_at_a_deadline(ancestor):
            continue
        yield FixedSleep(path, node.lineno, line.strip())


def check(paths: Iterable[Path]) -> list[FixedSleep]:
    """Every fixed sleep in the Python files under ``paths``."""
    found: list[FixedSleep] = []
    for root in paths:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for file in files:
            found.extend(fixed_sleeps(file.read_text(), file))
    return found


def main(argv: list[str]) -> int:
    found = check([Path(arg) for arg in argv] or [TESTS])
    for sleep in found:
        print(sleep)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
