"""Read one pack file: bounded in size, YAML through the safe loader's composer, into plain values
whose mappings and lists remember the line of every key and item.

PyYAML keeps the last of two equal keys and expands aliases silently; a pack needs neither, so
duplicate keys are problems and anchors/aliases are refused outright (no alias bombs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_PACK_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class LocatedMap(dict[str, Any]):
    """A YAML mapping with the 1-based line of itself and of each key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


class LocatedList(list[Any]):
    """A YAML sequence with the 1-based line of itself and of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class PackFileError(Exception):
    """The file cannot be read as a pack at all (too big, not UTF-8, bad YAML, aliases)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# libyaml's parser when PyYAML was built with it: the pure-Python one spends ~0.2 s on the
# baseline pack, which every `posture scan` loads before its first packet.
_PackLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refuse_anchors_and_aliases(text: str, kind: str) -> None:
    """Walk the event stream before composing, so no alias is ever expanded (no alias bombs)."""
    for event in yaml.parse(text, Loader=_PackLoader):
        if isinstance(event, yaml.AliasEvent):
            raise PackFileError(
                _mark_line(event.start_mark),
                f"YAML alias '*{event.anchor}' is not allowed in a {kind} (write it out)",
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise PackFileError(
                _mark_line(event.start_mark),
                f"YAML anchor '&{anchor}' is not allowed in a {kind} (write it out)",
            )


def _mark_line(mark: Any) -> int:
    return int(mark.line) + 1 if mark is not None else 0


def _line(node: Node) -> int:
    return _mark_line(node.start_mark)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.problems: list[tuple[int, str]] = []

    def build(self, node: Node, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise PackFileError(_line(node), f"nested deeper than {MAX_DEPTH} levels")
        if node.tag not in _PLAIN_TAGS:
            self.problems.append((_line(node), f"YAML tag '{node.tag}' is not allowed"))
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, depth)
        if isinstance(node, SequenceNode):
            items = LocatedList(_line(node))
            for child in node.value:
                items.append(self.build(child, depth + 1))
                items.item_lines.append(_line(child))
            return items
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError as exc:
            self.problems.append((_line(node), f"bad value: {getattr(exc, 'problem', exc)}"))
            return None

    def _mapping(self, node: MappingNode, depth: int) -> LocatedMap:
        result = LocatedMap(_line(node))
        for key_node, value_node in node.value:
            line = _line(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append((line, "YAML merge keys ('<<') are not allowed"))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append((line, "a mapping key must be a string, not a collection"))
                continue
            key = self.build(key_node, depth + 1)
            if not isinstance(key, str):
                self.problems.append((line, f"mapping key {key_node.value!r} must be a string"))
                continue
            if key in result:
                first = result.key_lines[key]
                self.problems.append((line, f"duplicate key '{key}' (first at line {first})"))
                continue
            result[key] = self.build(value_node, depth + 1)
            result.key_lines[key] = line
        return result


def read_pack_file(
    path: Path, *, kind: str = "rule pack", expected: str = "a mapping with pack, rules"
) -> tuple[Any, list[tuple[int, str]]]:
    """The file's single YAML document as Located values, with the (line, message) problems
    that did not stop reading; raises PackFileError when the file cannot be read at all.
    Playbooks are read the same way (`kind="playbook"`)."""
    try:
        size = path.stat().st_size
        if size > MAX_PACK_BYTES:
            raise PackFileError(0, f"file is {size} bytes; a {kind} may have {MAX_PACK_BYTES}")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackFileError(0, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PackFileError(0, f"cannot read: {exc.strerror or exc}") from None
    loader = _PackLoader(text)
    try:
        _refuse_anchors_and_aliases(text, kind)
        node = loader.get_single_node()
        if node is None:
            raise PackFileError(0, f"the file is empty (expected {expected})")
        builder = _Builder(loader)
        return builder.build(node), builder.problems
    except yaml.MarkedYAMLError as exc:
        line = _mark_line(exc.problem_mark or exc.context_mark)
        context = f" ({exc.context})" if exc.context else ""
        raise PackFileError(line, f"bad YAML: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise PackFileError(0, f"bad YAML: {exc}") from None
    except RecursionError:
        raise PackFileError(0, "bad YAML: nested too deeply") from None
    finally:
        loader.dispose()
