"""The one escaping layer for what the product writes as GitHub Markdown (plan comment, online checks, run report,
watch issue, job summaries): every string a spec, a record, a service or a model controls goes through here.

Two forms, both literal whatever the string holds:
- ``text``, for prose: every mark that can open inline markup is backslash-escaped (no emphasis, link, image, HTML,
  comment, entity, strikethrough or math starts), and ``@``, ``#``, ``://`` and ``www.`` are broken with a word
  joiner (GitHub makes mentions, issue links and autolinks from the rendered text, after the escapes);
- ``code``, an inline code span whose fence is longer than any run of backticks inside.
In both, line breaks become spaces (nothing ends a table row or a list item) and ``|`` is escaped (GFM splits a
table's cells before it parses code spans, and unescapes ``\\|`` inside them).
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"  # invisible, and no GitHub autolinker sees a handle or an issue number across it
# What can open inline markup mid-line (values never start a line: line breaks are gone, a cell or an item comes first).
# An underscore inside a word opens nothing in GFM (snake_case names stay readable in the source).
# ">" quotes only at a line's start and "!" is an image only before "[": neither needs a backslash mid-line.
_PUNCTUATION = re.compile(r"([\\`*\[\]<&~|#@$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_BACKTICKS = re.compile(r"`+")
_AUTOLINKED = re.compile(r"(?i)(www)(\.)|(:)(//)")


def _one_line(value: object) -> str:
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(value)))


def text(value: object) -> str:
    """``value`` as literal prose, in a table cell or anywhere else."""
    flat = _AUTOLINKED.sub(lambda m: f"{m.group(1) or m.group(3)}{WORD_JOINER}{m.group(2) or m.group(4)}", _one_line(value))
    escaped = _PUNCTUATION.sub(r"\\\1", flat)
    # After the escape: "\@" and "\#" still read as a mention or an issue link to GitHub, which runs on the text.
    return escaped.replace("\\@", "\\@" + WORD_JOINER).replace("\\#", "\\#" + WORD_JOINER)


def code(value: object) -> str:
    """``value`` as an inline code span, in a table cell or anywhere else (``|`` is escaped; GitHub unescapes it)."""
    flat = _one_line(value).replace("|", "\\|")
    if not flat.strip():
        return "` `" if flat else "`-`"
    longest = max((len(m) for m in _BACKTICKS.findall(flat)), default=0)
    fence = "`" * (longest + 1)
    # A space on each side when the content starts or ends with a backtick (or a space), which CommonMark strips.
    pad = " " if flat[0] in "` " or flat[-1] in "` " else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


_UNSAFE_IN_LABEL = re.compile(r"[^\w .,:/()+=-]")


def label(value: object, limit: int = 80) -> str:
    """A quoted label of a Mermaid chart (a title, a series): quotes, backticks, brackets and line breaks dropped."""
    return _UNSAFE_IN_LABEL.sub("", _one_line(value))[:limit]
