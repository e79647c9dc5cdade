"""Reading user files safely: one text reader (byte cap, UTF-8 check), one JSON and one YAML loader (depth, alias and
size limits), and `shown()` for echoing a bad value without flooding or driving the terminal.

Every user-supplied file (job files, scenarios and their CSVs, policy and weights files) goes through here, so a
binary file, an endless file, a 100,000-level JSON document or a YAML alias bomb is refused with a one-line
DataError in bounded time and memory. The limits are sizes no real input file approaches; they are not facts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from suanwang.errors import DataError

MAX_JOB_FILE_BYTES = 256 * 2**20  # 256 MiB: about two million job rows
MAX_CONFIG_BYTES = 16 * 2**20  # 16 MiB: scenario, policy and weights files and the CSVs they name
MAX_DEPTH = 64  # nesting levels of a YAML document
MAX_YAML_NODES = 1_000_000  # YAML nodes after expanding aliases (an alias bomb expands to billions)
SHOWN_CHARS = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """`value` quoted for an error message: control characters escaped, at most `limit` characters."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        text = f"{float(value):.3g}" if value.bit_length() < 1000 else "a number of thousands of digits"
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value)
    else:  # a container: its type only (its repr may be huge or deeply nested)
        return f"a {type(value).__name__}"
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text[: limit + 1])
    return "'" + text[:limit] + ("..." if len(text) > limit else "") + "'"


def has_control(text: str, allow: str = "") -> str | None:
    """The first control character (C0, DEL, C1) of `text` not in `allow`, or None."""
    for m in _CONTROL.finditer(text):
        if m.group() not in allow:
            return m.group()
    return None


def read_text(
    path: str | Path,
    *,
    max_bytes: int = MAX_CONFIG_BYTES,
    shown_as: str | None = None,
    error: type[DataError] = DataError,
) -> str:
    """The text of a UTF-8 file (a BOM is dropped); `error` (a DataError) for a file over `max_bytes`, a binary
    or a non-UTF-8 one.

    Reads at most `max_bytes` + 1 bytes, so an endless file (/dev/zero) costs bounded time and memory; a pipe is
    refused before it is opened."""
    path = Path(path)
    name = shown_as or str(path)
    if path.is_dir():
        raise error(name, None, None, "is a folder, not a file", "give the path of a file")
    if path.is_fifo() or path.is_socket():  # opening a pipe with no writer would wait forever
        raise error(name, None, None, "is a pipe or socket, not a file", "give the path of a regular file")
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(name, None, None, "file not found", "check the path") from None
    except PermissionError:
        raise error(name, None, None, "cannot be read (permission denied)", "check the file's permissions") from None
    except OSError as e:
        raise error(name, None, None, f"cannot be read ({e.strerror or e})", "give a regular file") from None
    if len(data) > max_bytes:
        raise error(
            name, None, None, f"is larger than {max_bytes // 2**20} MiB (the limit)", "split it into smaller files"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise error(name, line, None, "contains a NUL byte: a binary file, not text", "give a UTF-8 text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise error(
            name, line, None, f"is not UTF-8 text (byte 0x{data[e.start]:02x})", "save the file as UTF-8"
        ) from None


class _Refused(ValueError):
    """A document the loaders refuse: what is wrong and the fix."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.fix = fix


class _YamlRefused(yaml.YAMLError):
    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.fix = fix


def _no_constant(name: str):
    raise _Refused(f"{name} is not a number JSON allows", "write a finite number, or leave the field out")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _Refused(f"an object repeats the key {shown(k)}", "give each key once")
        out[k] = v
    return out


def load_json_text(text: str, file: str, error: type[DataError] = DataError) -> Any:
    """Parse JSON text; `error` naming the line for bad syntax, and for NaN or Infinity, a repeated key or nesting
    past Python's limit."""
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise error(file, e.lineno, None, f"is not valid JSON ({e.msg})", "check the brackets and commas") from None
    except ValueError as e:
        if "digits" in str(e):  # Python's bound on int parsing (sys.get_int_max_str_digits)
            raise error(
                file, None, None, "holds a number of more than 4300 digits", "write a number in range"
            ) from None
        raise error(file, None, None, str(e), "write a finite number, or leave the field out") from None
    except RecursionError:
        raise error(file, None, None, "nests too deeply", "flatten the document") from None


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents nesting deeper than MAX_DEPTH, expanding (aliases) past MAX_YAML_NODES,
    or repeating a key in a mapping (which YAML would silently resolve to the last value)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._weights: dict[int, int] = {}
        self._total = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self._add(self._weights.get(id(node), 1), event.start_mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            problem = f"nests deeper than {MAX_DEPTH} levels (the limit) near line {mark.line + 1}"
            raise _YamlRefused(problem, "flatten the document")
        before = self._total
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._total += 1
        self._weights[id(node)] = self._total - before
        self._check(node.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep) if key_node.tag != "tag:yaml.org,2002:merge" else None
            if key is not None and isinstance(key, str | int | float | bool) and key in seen:
                line = key_node.start_mark.line + 1
                raise _YamlRefused(f"repeats the key {shown(key)} at line {line}", "give each key once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def _add(self, weight: int, mark) -> None:
        self._total += weight
        self._check(mark)

    def _check(self, mark) -> None:
        if self._total > MAX_YAML_NODES:
            raise _YamlRefused(
                f"expands (through aliases) to more than {MAX_YAML_NODES:,} values (the limit) "
                f"near line {mark.line + 1}",
                "write the values out, or use fewer aliases",
            )


def load_yaml_text(text: str, file: str, error: type[DataError] = DataError) -> Any:
    """Parse YAML safely (no object tags) within depth and alias-expansion limits; DataError naming the line."""
    try:
        loader = _LimitedLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = None if mark is None else mark.line + 1
        raise error(file, line, None, "is not valid YAML", "fix the syntax near that line") from None
    except _YamlRefused as e:
        raise error(file, None, None, str(e), e.fix) from None
    except yaml.YAMLError as e:
        raise error(file, None, None, f"is not valid YAML ({shown(str(e), 80)})", "fix the syntax") from None
    except RecursionError:
        raise error(file, None, None, "nests too deeply", "flatten the document") from None


def load_yaml(
    path: str | Path,
    *,
    shown_as: str | None = None,
    max_bytes: int = MAX_CONFIG_BYTES,
    error: type[DataError] = DataError,
) -> Any:
    """A YAML file through `read_text` and `load_yaml_text`."""
    name = shown_as or str(path)
    return load_yaml_text(read_text(path, max_bytes=max_bytes, shown_as=name, error=error), name, error)
