"""Reports: the self-contained offline HTML report of a national simulation."""

from suanwang.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
