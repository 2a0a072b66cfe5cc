"""Standalone HTML pages shared by every study's report pages."""

from __future__ import annotations

import html

import pandas as pd

_STYLE = (
    "<style>body{font-family:sans-serif;font-size:13px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
    "text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}"
    "caption{text-align:left;font-weight:bold;padding:8px 0}</style>"
)


def page(title: str, body: str) -> str:
    """A standalone HTML page with ``title`` as its heading and ``body`` (HTML) below it."""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"{_STYLE}</head><body><h2>{html.escape(title)}</h2>{body}</body></html>\n"
    )


def table(frame: pd.DataFrame, floats: str = "{:.3g}") -> str:
    """``frame`` as an HTML table without its index; missing values as a dash."""
    return frame.to_html(index=False, float_format=floats.format, na_rep="–", border=0)
