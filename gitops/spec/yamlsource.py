"""YAML loading that remembers where each field stands, and refuses what YAML lets slip.

PyYAML's composer gives every node its line; we build plain Python values from the node tree and a
map from field paths to line numbers, so that every finding can say ``FILE:LINE``. Duplicate keys,
empty documents and non-mapping documents become findings instead of silent overwrites or tracebacks.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml

from gitops.spec.findings import Code, Finding, error

try:  # the C loader is several times faster; fall back where libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[str | int, ...]
MAX_SPEC_BYTES = 256 * 1024  # a spec (or policy) is a few KiB; anything far larger is a mistake or an attack
MAX_DEPTH = 32


def unreadable_reason(exc: Exception) -> str:
    """One line saying why ``read_text_bounded`` could not give a file's text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def read_text_bounded(path: str | os.PathLike[str], limit: int = MAX_SPEC_BYTES) -> str:
    """The text of a regular file of at most ``limit`` bytes, else ``ValueError`` saying why: a FIFO would block,
    a device (a link to /dev/zero) never ends, and a huge file is no spec."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file (a FIFO, device or directory)")
        if info.st_size > limit:
            raise ValueError(f"{info.st_size} bytes; at most {limit // 1024} KiB")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"over {limit // 1024} KiB")
    return data.decode("utf-8")


@dataclass
class YamlDocument:
    """A parsed YAML mapping plus the line (1-based) of every field path in it."""

    data: dict[str, Any] | None
    lines: dict[Path, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    file: str | None = None
    columns: dict[Path, int] = field(default_factory=dict)  # the column (1-based) where each field's key begins

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that exists in the document."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), 1)

    def column_of(self, path: Path) -> int | None:
        """The column of ``path``'s key, or of its nearest ancestor's (None: the document itself)."""
        probe = tuple(path)
        while probe:
            if probe in self.columns:
                return self.columns[probe]
            probe = probe[:-1]
        return None

    def locate(self, findings: list[Finding]) -> list[Finding]:
        """Findings made without a place (dotted paths only), placed in this document."""
        return [f.located(self.file, self.line_of(undotted(f.path)), column=self.column_of(undotted(f.path))) for f in findings]


def undotted(path: str) -> Path:
    """``environments[1].name`` -> ``("environments", 1, "name")``: ``dotted`` read back."""
    out: list[str | int] = []
    for part in path.split(".") if path else []:
        name, *indexes = part.replace("]", "").split("[")
        if name:
            out.append(name)
        out += [int(i) for i in indexes if i.isdigit()]
    return tuple(out)


def dotted(path: Path) -> str:
    """``("finetune", "params", "lr")`` -> ``finetune.params.lr``; list indexes as ``[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Builder:
    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self.lines: dict[Path, int] = {}
        self.columns: dict[Path, int] = {}
        self.findings: list[Finding] = []
        self._seen: set[int] = set()  # collection nodes built so far: one met twice is an alias
        self._aliased = False

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            # An alias of a collection shares its node: expanding it is how a few hundred bytes become gigabytes
            # ("billion laughs"), and a recursive one never ends. Specs have no use for them: refuse, do not expand.
            if id(node) in self._seen:
                if not self._aliased:  # one finding says it; a bomb repeats its aliases thousands of times
                    self.findings.append(
                        error(
                            dotted(path),
                            "YAML aliases (*name) of mappings or lists are not supported",
                            "write the value out",
                            code=Code.YAML,
                        ).located(line=node.start_mark.line + 1)
                    )
                self._aliased = True
                return None
            self._seen.add(id(node))
            if len(path) > MAX_DEPTH:
                raise _TooDeep(node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.findings.append(
                        error(dotted(path), "YAML merge keys (<<) are not supported", "write the fields out", code=Code.YAML).located(
                            line=key_node.start_mark.line + 1
                        )
                    )
                    continue
                key = self._loader.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    self.findings.append(
                        error(dotted(path), f"unsupported mapping key {key!r}", "use plain string keys", code=Code.YAML).located(
                            line=key_node.start_mark.line + 1
                        )
                    )
                    continue
                key = str(key) if not isinstance(key, str) else key
                child = path + (key,)
                if key in out:
                    self.findings.append(
                        error(
                            dotted(child),
                            f"duplicate key '{key}' (first on line {self.lines[child]})",
                            "keep one of them; YAML would silently keep only the last",
                            code=Code.YAML,
                        ).located(line=key_node.start_mark.line + 1)
                    )
                    continue
                out[key] = self.build(value_node, child)
                self.lines[child] = key_node.start_mark.line + 1
                self.columns[child] = key_node.start_mark.column + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._loader.construct_object(node, deep=True)


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def parse_yaml(text: str, file: str | None = None) -> YamlDocument:
    """Parse one YAML document that must be a mapping; never raises for bad input, and never spends more than a
    bounded effort on it (size, depth and aliases are bounded before anything is built)."""
    doc = YamlDocument(data=None, file=file)
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_SPEC_BYTES:
        doc.findings.append(
            error(
                "",
                f"the file is {size} bytes; a run spec is at most {MAX_SPEC_BYTES // 1024} KiB",
                "a spec names its data; it does not hold it",
                code=Code.YAML,
            ).located(file=file, line=1)
        )
        return doc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            doc.findings.append(
                error("", "the file is empty", "a run spec is a YAML mapping; start from runs/local-tiny.yaml", code=Code.YAML)
            )
        elif not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            doc.findings.append(
                error(
                    "", f"the document is {kind}, not a mapping of fields", "write 'field: value' lines at the top level", code=Code.YAML
                ).located(line=node.start_mark.line + 1)
            )
        else:
            builder = _Builder(loader)
            doc.data = builder.build(node, ())
            doc.lines = builder.lines
            doc.columns = builder.columns
            doc.findings.extend(builder.findings)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        doc.findings.append(
            error("", f"invalid YAML: {problem}", "check indentation, quotes and ':' after keys", code=Code.YAML).located(
                line=mark.line + 1 if mark else 1
            )
        )
    except yaml.YAMLError as exc:
        doc.findings.append(error("", f"invalid YAML: {str(exc).splitlines()[0]}", code=Code.YAML))
    except _TooDeep as exc:
        doc.data = None
        doc.findings.append(
            error("", f"the document nests deeper than {MAX_DEPTH} levels", "a run spec is a few levels deep", code=Code.YAML).located(
                line=exc.line
            )
        )
    except RecursionError:
        doc.data = None
        doc.findings.append(error("", "the document nests too deeply to read", "a run spec is a few levels deep", code=Code.YAML))
    finally:
        loader.dispose()
    doc.findings = [f.located(file=file, line=f.line or doc.line_of(())) for f in doc.findings]
    return doc
