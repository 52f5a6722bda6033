"""The report as one self-contained HTML page: inline CSS, figures as base64
PNG data URIs, tables as HTML tables, every text escaped. Pure: sections in,
a string out; it reads and writes nothing."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Sequence
from html import escape

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:980px;margin:0 auto;padding:16px 24px}
header{border-bottom:2px solid #4c72b0;margin-bottom:12px}
h1{font-size:22px;margin:8px 0 4px} h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:12px;margin:0 0 8px}
nav ol{columns:2;font-size:13px;margin:4px 0 0} nav a{text-decoration:none}
figure{margin:10px 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.caption{color:#555;font-size:12px;margin-top:2px}
table{border-collapse:collapse;font-size:12px;margin:8px 0} th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top;white-space:pre-line}
th{background:#f3f5f9} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecea}
.na{color:#8a6d3b;background:#fcf8e3;border:1px solid #faebcc;padding:6px 10px;border-radius:3px}
.failed{color:#a94442;background:#f2dede;border:1px solid #ebccd1;padding:6px 10px;border-radius:3px}
.badge{display:inline-block;font-size:11px;padding:0 6px;border-radius:8px;margin-left:6px;vertical-align:middle}
.badge.na{padding:0 6px} .badge.failed{padding:0 6px}
"""


@dataclasses.dataclass(frozen=True)
class Image:
    png: bytes
    alt: str
    caption: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""
    # Indices of rows shown as failures (highlighted).
    bad_rows: frozenset[int] = frozenset()


@dataclasses.dataclass(frozen=True)
class Section:
    """One numbered section: its content, or why it has none.

    `unavailable` is an expected absence (an input not written yet), `failed`
    an error while building the section; either replaces the content."""

    key: str
    title: str
    items: Sequence[Image | Table | str] = ()
    unavailable: str | None = None
    failed: str | None = None

    @property
    def ok(self) -> bool:
        return self.unavailable is None and self.failed is None


def not_available(key: str, title: str, reason: str) -> Section:
    return Section(key, title, unavailable=reason)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_report(day: dt.date, sections: Sequence[Section], generated_at: dt.datetime, subtitle: str = "") -> str:
    """The whole page: header, table of contents, then each section in order."""
    title = f"seqlake morning report: {day.isoformat()}"
    available = sum(s.ok for s in sections)
    contents = "".join(
        f'<li><a href="#{escape(s.key)}">{escape(s.title)}</a>{_badge(s)}</li>' for s in sections
    )
    body = "".join(_section(i, s) for i, s in enumerate(sections, start=1))
    meta = f"generated {generated_at.strftime('%Y-%m-%d %H:%M:%S UTC')}; {available} of {len(sections)} sections available"
    if subtitle:
        meta += f"; {subtitle}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p class="meta">{escape(meta)}</p></header>'
        f"<nav><strong>Contents</strong><ol>{contents}</ol></nav>"
        f"<main>{body}</main></body></html>\n"
    )


def _badge(section: Section) -> str:
    if section.failed is not None:
        return '<span class="badge failed">failed</span>'
    if section.unavailable is not None:
        return '<span class="badge na">not available</span>'
    return ""


def _section(number: int, section: Section) -> str:
    head = f'<section id="{escape(section.key)}"><h2>{number}. {escape(section.title)}</h2>'
    if section.failed is not None:
        return head + f'<p class="failed">failed: {escape(section.failed)}</p></section>'
    if section.unavailable is not None:
        return head + f'<p class="na">not available: {escape(section.unavailable)}</p></section>'
    return head + "".join(_item(item) for item in section.items) + "</section>"


def _item(item: Image | Table | str) -> str:
    if isinstance(item, Image):
        caption = f"<figcaption>{escape(item.caption)}</figcaption>" if item.caption else ""
        return f'<figure><img src="{png_data_uri(item.png)}" alt="{escape(item.alt)}">{caption}</figure>'
    if isinstance(item, Table):
        return _table(item)
    return f'<p class="caption">{escape(item)}</p>'


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in table.columns)
    rows = []
    for i, row in enumerate(table.rows):
        cells = "".join(_cell(v) for v in row)
        rows.append(f'<tr class="bad">{cells}</tr>' if i in table.bad_rows else f"<tr>{cells}</tr>")
    caption = f"<caption class=\"caption\">{escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value: object) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, str) and value.endswith("%"):
        return f'<td class="num">{escape(value)}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:,.4g}</td>'
    return f"<td>{escape(str(value))}</td>"
