"""YAML for manifests: PyYAML's safe loader, duplicate keys refused, and the line of the
node a validation error points at."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from agents.errors import UserError


def load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The document in `text` (plain data) and its node tree (for error lines).

    Raises:
        UserError: not YAML, several documents, or a key given twice in one mapping.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        why = exc.problem or exc.context or "not YAML"
        raise UserError(f"{source}{where}: {why} (is it YAML? check the indentation)") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not YAML: {exc}") from None
    if root is None:
        return None, None
    _refuse_duplicates(root, source)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root), root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{source}{where}: {exc.problem}") from None
    finally:
        loader.dispose()


def error_line(root: yaml.Node | None, loc: Sequence[object]) -> int | None:
    """The 1-based line of the deepest node along `loc` (keys and indexes; parts that name
    no node, such as pydantic's union tags, are skipped); for a key, the key's line."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if hit is None:
                continue
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _refuse_duplicates(node: yaml.Node, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                raise UserError(
                    f"{source} line {key.start_mark.line + 1}: {name!r} is given twice (first on "
                    f"line {seen[name]}); keep one"
                )
            seen[name] = key.start_mark.line + 1
            _refuse_duplicates(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(item, source)
