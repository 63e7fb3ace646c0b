"""The user-facing error messages the package can raise, read from its source.

Used by scripts/docs-troubleshooting to write docs/troubleshooting.md, and by its test.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from singer_sdk.exceptions import SingerSDKError
from singer_sdk.singerlib.exceptions import SingerError

from target_anaplan.errors import TargetAnaplanError

PACKAGE = Path(__file__).parents[1] / "target_anaplan"
EXPECTED = (TargetAnaplanError, SingerSDKError, SingerError)
MIN_FRAGMENT = 12  # shorter literal pieces ("' (", ": ") say nothing a reader could find


@dataclass(frozen=True)
class Message:
    """One raise site: where it is, the error class, the message as a template."""

    where: str
    error: str
    template: str  # literal text with <...> for what is filled in

    @property
    def fragments(self) -> list[str]:
        """The literal pieces of the template long enough to look for in the docs."""
        pieces = [p.strip() for p in self.template.replace(">", "<").split("<")[::2]]
        return [p for p in pieces if len(p) >= MIN_FRAGMENT]


def _template(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else f"<{ast.unparse(part.value)}>"
            for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        return None if left is None or right is None else left + right
    return None


def _latest_assignments(function: ast.AST) -> dict[str, list[tuple[int, ast.expr]]]:
    found: dict[str, list[tuple[int, ast.expr]]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found.setdefault(target.id, []).append((node.lineno, node.value))
    return found


def messages() -> Iterator[Message]:
    """Every ``raise SomeExpectedError("...")`` in the package but the simulator."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if "simulator" in path.parts or path.name == "__main__.py":
            continue
        module = importlib.import_module(
            ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        )
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            assignments = _latest_assignments(function)
            for node in ast.walk(function):
                call = (
                    node.exc
                    if isinstance(node, ast.Raise)
                    else (node.value if isinstance(node, ast.Return) else None)
                )
                if not isinstance(call, ast.Call) or not call.args:
                    continue
                func = call.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                cls = getattr(module, name, None) if name else None
                if not (inspect.isclass(cls) and issubclass(cls, EXPECTED)):
                    continue
                arg = call.args[0]
                if isinstance(arg, ast.Name):
                    earlier = sorted(
                        (item for item in assignments.get(arg.id, []) if item[0] < node.lineno),
                        key=lambda item: item[0],
                    )
                    arg = earlier[-1][1] if earlier else arg
                template = _template(arg)
                if template is not None:
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    yield Message(where, name, template)
