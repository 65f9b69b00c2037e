"""The HTML page: one small template with inline CSS, every value escaped with `html.escape`.

Figures are embedded as ``data:`` URIs (SVG) and thumbnails as base64 PNG, so the file opens anywhere, offline,
and asks the network for nothing. Each figure carries a stable ``data-figure`` name that tests look for.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FigureBlock", "LabelIssues", "WorstItem", "render_page"]


@dataclass(frozen=True, kw_only=True)
class FigureBlock:
    """One figure: ``name`` (its ``data-figure``), a heading, a one-line caption, and its SVG text."""

    name: str
    title: str
    caption: str
    svg: str
    wide: bool = False


@dataclass(frozen=True, kw_only=True)
class WorstItem:
    """One row of the worst-predicted table; ``thumbnail`` is base64 PNG or None."""

    id: str
    truth: str
    prediction: str
    p_truth: float
    thumbnail: str | None = None
    text: str | None = None


@dataclass(frozen=True, kw_only=True)
class LabelIssues:
    """The first likely label errors of the training rows (`labelwise.label_issues.LabelIssue` dicts) and how many
    were found in all."""

    shown: Sequence[Mapping[str, Any]]
    total: int


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f5f6f8;
color:#1d2330;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:2px solid #d9dde3;
padding-bottom:4px}h3{font-size:15px;margin:0 0 6px}
.sub{color:#5a6270;margin:0 0 14px}.reason{background:#fff;border-left:4px solid #1f5fa8;padding:10px 14px;
margin:12px 0;border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.card{background:#fff;border-radius:8px;
padding:12px 18px;min-width:130px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card .v{font-size:26px;font-weight:600}.card .k{color:#5a6270;font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:18px}
figure{background:#fff;margin:0;padding:14px;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
figure.wide{grid-column:1/-1}figure img{width:100%;height:auto;display:block;margin:0 auto}
figure.wide img{max-width:920px}
figcaption{color:#5a6270;font-size:13px;margin-top:6px}
table{border-collapse:collapse;background:#fff;border-radius:8px;overflow:hidden;font-size:14px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}th,td{padding:6px 12px;text-align:left;border-bottom:1px solid #eceff3}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
img.thumb{width:48px;height:48px;object-fit:contain;image-rendering:pixelated;background:#eee}
td.text{max-width:520px;font-size:13px}
.metrics table{min-width:420px}
"""


def render_page(
    *,
    title: str,
    subtitle: str,
    reason: str,
    headline: dict[str, float],
    figures: Sequence[FigureBlock],
    metrics: dict[str, float],
    worst: Sequence[WorstItem],
    label_issues: LabelIssues | None = None,
) -> str:
    """The whole report as one HTML document; ``label_issues`` only for a cross-fitted run."""
    body = "\n".join(
        [
            f"<h1>{_e(title)}</h1>",
            f'<p class="sub">{_e(subtitle)}</p>',
            f'<div class="reason"><strong>The task and why.</strong> {_e(reason)}</div>',
            '<h2>Headline metrics</h2><div class="cards" data-section="headline">',
            *(
                f'<div class="card"><div class="v">{_number(v)}</div><div class="k">{_e(k)}</div></div>'
                for k, v in headline.items()
            ),
            "</div>",
            "<h2>Figures</h2>",
            '<div class="grid">',
            *(_figure(block) for block in figures),
            "</div>",
            _worst(worst),
            _label_issues(label_issues),
            "<h2>All metrics</h2>",
            _metrics_table(metrics),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No network: a policy that forbids every fetch except inline styles and data: images.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def _figure(block: FigureBlock) -> str:
    uri = "data:image/svg+xml;base64," + base64.b64encode(block.svg.encode("utf-8")).decode("ascii")
    wide = ' class="wide"' if block.wide else ""
    return (
        f'<figure{wide} data-figure="{_e(block.name)}"><h3>{_e(block.title)}</h3>'
        f'<img src="{uri}" alt="{_e(block.title)}"><figcaption>{_e(block.caption)}</figcaption></figure>'
    )


def _worst(items: Sequence[WorstItem]) -> str:
    if not items:
        return ""
    thumbs = any(item.thumbnail for item in items)
    texts = any(item.text is not None for item in items)
    head = "<tr><th>#</th><th>id</th>" + ("<th>image</th>" if thumbs else "") + ("<th>text</th>" if texts else "")
    head += "<th>true</th><th>predicted</th><th>P(true)</th></tr>"
    rows = []
    for rank, item in enumerate(items, start=1):
        image = ""
        if thumbs:
            image = (
                f'<td><img class="thumb" src="data:image/png;base64,{item.thumbnail}" alt=""></td>'
                if (item.thumbnail)
                else "<td></td>"
            )
        text = f'<td class="text">{_e(item.text or "")}</td>' if texts else ""
        rows.append(
            f'<tr><td class="num">{rank}</td><td>{_e(item.id)}</td>{image}{text}<td>{_e(item.truth)}</td>'
            f'<td>{_e(item.prediction)}</td><td class="num">{_number(item.p_truth)}</td></tr>'
        )
    return (
        "<h2>Worst-predicted items</h2>"
        '<p class="sub">The lowest probability the model gave to the true answer '
        "(multilabel: to the label, present or absent, it was most wrong about).</p>"
        f'<table data-figure="worst">{head}{"".join(rows)}</table>'
    )


def _label_issues(issues: LabelIssues | None) -> str:
    if issues is None:
        return ""
    if not issues.shown:
        return (
            '<h2>Likely label errors</h2><p class="sub" data-section="label-issues">None found among the training '
            "rows (cleanlab's confident learning on the run's out-of-fold probabilities).</p>"
        )
    rows = "".join(
        f'<tr><td class="num">{_e(issue["row"])}</td><td>{_e(issue["given"])}</td><td>{_e(issue["suggested"])}</td>'
        f'<td class="num">{_number(float(issue["score"]))}</td></tr>'
        for issue in issues.shown
    )
    return (
        "<h2>Likely label errors</h2>"
        f'<p class="sub">The {len(issues.shown)} most likely of {issues.total} training rows whose given label the '
        "run's out-of-fold probabilities contradict (cleanlab's confident learning); score = 1 - the label quality "
        "of the given label. Rows count the training table's rows from 0; `labelwise.load(RUN).label_issues()` "
        "lists them all.</p>"
        '<table data-section="label-issues"><tr><th>row</th><th>given</th><th>suggested</th><th>score</th></tr>'
        f"{rows}</table>"
    )


def _metrics_table(metrics: dict[str, float]) -> str:
    rows = "".join(f'<tr><td>{_e(k)}</td><td class="num">{_number(v)}</td></tr>' for k, v in metrics.items())
    return (
        f'<div class="metrics"><table data-section="metrics"><tr><th>metric</th><th>value</th></tr>{rows}</table></div>'
    )


def _number(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if float(value).is_integer() and abs(value) > 1:  # a count (unknown_items); a fraction of 1 keeps its decimals
        return f"{int(value)}"
    return f"{value:.4f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
