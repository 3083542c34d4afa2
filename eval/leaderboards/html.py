"""The leaderboard report as one self-contained HTML page.

Everything is inline (CSS, a little JS, plots as SVG drawn by matplotlib) so the page can be
mailed, archived with the results, or opened from a disk with no network; it must never
fetch anything. Every string from the model is escaped. The cell and provenance formatting
here is shared with the Markdown report so both show the same numbers.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

MISSING = "—"


def fmt_number(x: float | None, ref: float | None = None) -> str:
    """About three significant figures without exponents; ``ref`` (the largest magnitude of
    a group, e.g. a CI) fixes the decimals so a value and its bounds line up."""
    if x is None:
        return MISSING
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    mag = abs(ref if ref is not None else x)
    if mag == 0:
        return "0"
    if mag < 1e-3:
        return f"{x:.2g}"
    decimals = min(4, max(0, 2 - math.floor(math.log10(mag))))
    return f"{x:.{decimals}f}"


def fmt_ci(cell: dict | None) -> tuple[str, str]:
    """A ci cell as (value, "[low, high]"), with shared decimals; missing parts are dashes."""
    cell = cell or {}
    parts = [cell.get(k) for k in ("value", "low", "high")]
    finite = [abs(float(p)) for p in parts if p is not None and math.isfinite(float(p))]
    ref = max(finite) if finite else None
    value, low, high = (fmt_number(p, ref) for p in parts)
    if parts[1] is None and parts[2] is None:
        return value, ""
    return value, f"[{low}, {high}]"


def fmt_cell(cell: Any, kind: str) -> str:
    """A cell as plain text, the way the Markdown table and the page show it."""
    if kind == "ci":
        value, bounds = fmt_ci(cell)
        return f"{value} {bounds}".rstrip()
    if cell is None:
        return MISSING
    if kind == "number":
        return fmt_number(cell)
    return str(cell)


def sort_value(cell: Any, kind: str) -> str:
    """What the page sorts a cell by ('' for a missing value, which always sorts last)."""
    if kind == "ci":
        cell = (cell or {}).get("value")
    if cell is None:
        return ""
    return repr(float(cell)) if kind in ("number", "ci", "int") else str(cell)


def _short(value: Any, n: int) -> str:
    if isinstance(value, list):
        return ", ".join(_short(v, n) for v in value)
    return str(value)[:n]


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if len(value) > 1 and all(isinstance(v, dict) for v in value):
            return _dicts_that_differ(value)
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _dicts_that_differ(values: list | tuple) -> str:
    """Several configs (an entry whose tracks or seeds played with different ones) as the
    keys they share, then each key that differs with its values in turn, ``a | b``."""
    keys = list(dict.fromkeys(k for v in values for k in v))
    same = {k: values[0].get(k) for k in keys if all(v.get(k) == values[0].get(k) for v in values)}
    differ = [
        f"{k} {' | '.join(_plain(v.get(k, '-')) for v in values)}" for k in keys if k not in same
    ]
    parts = [f"differing: {'; '.join(differ)}"]
    if same:
        parts.append(f"shared: {_plain(same)}")
    return "; ".join(parts)


_PROVENANCE_ORDER: list[tuple[str, str, Any]] = [
    ("entry_kind", "entry kind", str),
    ("algo", "algorithm", str),
    ("env_id", "env id", _plain),
    ("checkpoint_sha256", "checkpoint SHA-256", lambda v: _short(v, 12)),
    ("checkpoint", "checkpoint", _plain),
    ("run_dir", "run dir", _plain),
    ("seeds", "seeds", _plain),
    ("episodes", "episodes", _plain),
    ("git_commit", "git commit", lambda v: _short(v, 10)),
    ("protocol", "protocol", _plain),
    ("acting", "acting", _plain),
    ("versions", "versions", _plain),
    ("wall_s", "wall time", lambda v: _duration(v) if isinstance(v, int | float) else _plain(v)),
    ("created", "created", _plain),
]
_KNOWN = frozenset(key for key, _, _ in _PROVENANCE_ORDER)


def provenance_items(prov: dict) -> list[tuple[str, str]]:
    """(label, text) pairs for a row's provenance: the usual keys first, shortened the way a
    reader compares them (a SHA-256 prefix, a short commit), then any other keys."""
    items = []
    for key, label, show in _PROVENANCE_ORDER:
        if prov.get(key) not in (None, "", [], {}):
            items.append((label, show(prov[key])))
    for key, value in prov.items():
        if key in _KNOWN or value in (None, "", [], {}):
            continue
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else _plain(value)
        items.append((key.replace("_", " "), text))
    return items


# --- plots ------------------------------------------------------------------------------


def _arr(values: list | None) -> list[float]:
    return [math.nan if v is None else float(v) for v in (values or [])]


def _steps(x: float, _pos: Any = None) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:g}{suffix}"
    return f"{x:g}"


def _bars(ax: Any, plot: dict, colors: dict[str, str], with_ci: bool) -> None:
    cats, series = plot.get("categories") or [], plot["series"]
    width = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        xs = [c + (i - (len(series) - 1) / 2) * width for c in range(len(cats))]
        y = _arr(s["y"])
        yerr = None
        if with_ci and s.get("low") is not None and s.get("high") is not None:
            low, high = _arr(s["low"]), _arr(s["high"])
            yerr = [
                [max(0.0, a - b) for a, b in zip(y, low, strict=True)],
                [max(0.0, b - a) for a, b in zip(y, high, strict=True)],
            ]
        ax.bar(
            xs,
            y,
            width * 0.92,
            yerr=yerr,
            label=s["name"],
            color=colors[s["name"]],
            error_kw={"elinewidth": 1, "capsize": 2.5, "ecolor": "#333"},
        )
    ax.set_xticks(range(len(cats)))
    long = sum(len(c) for c in cats) > 60 or max((len(c) for c in cats), default=0) > 14
    ax.set_xticklabels(cats, rotation=25 if long else 0, ha="right" if long else "center")
    ax.axhline(0, color="#555", linewidth=0.6)


def _lines(ax: Any, plot: dict, colors: dict[str, str], step: bool) -> None:
    for s in plot["series"]:
        x, y, color = _arr(s["x"]), _arr(s["y"]), colors[s["name"]]
        where = {"where": "post"} if step else {}
        (ax.step if step else ax.plot)(x, y, label=s["name"], color=color, linewidth=1.6, **where)
        if s.get("low") is not None and s.get("high") is not None:
            band = {"step": "post"} if step else {}
            ax.fill_between(
                x, _arr(s["low"]), _arr(s["high"]), color=color, alpha=0.18, linewidth=0, **band
            )
    if step:
        ax.set_ylim(-0.02, 1.02)
    elif max((abs(v) for s in plot["series"] for v in _arr(s["x"])), default=0) >= 1e4:
        ax.xaxis.set_major_formatter(FuncFormatter(_steps))


def _namespace_ids(svg: str, prefix: str) -> str:
    """Prefix every id and reference so several SVGs can share one page without clashes."""
    svg = re.sub(r'(?<![\w-])id="', f'id="{prefix}-', svg)
    svg = svg.replace("url(#", f"url(#{prefix}-")
    return re.sub(r'href="#', f'href="#{prefix}-', svg)


def plot_svg(plot: dict, colors: dict[str, str]) -> str:
    """One plot as an inline ``<svg>`` element (no XML header, namespaces or metadata, which
    carry URLs; the HTML parser knows SVG without them)."""
    # Text stays text (the page's font, selectable); a '$' in a name is not maths.
    rc = {"svg.fonttype": "none", "svg.hashsalt": plot["id"], "font.size": 9}
    with matplotlib.rc_context({**rc, "text.parse_math": False}):
        fig = Figure(figsize=(8.0, 3.4), layout="constrained")
        FigureCanvasAgg(fig)  # no pyplot: no global state, no display, whatever the backend
        _draw(fig.add_subplot(), plot, colors)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return _namespace_ids(svg, "svg-" + re.sub(r"[^\w-]", "_", plot["id"]))


def _draw(ax: Any, plot: dict, colors: dict[str, str]) -> None:
    kind = plot["kind"]
    if kind in ("bars_ci", "grouped_bars"):
        _bars(ax, plot, colors, with_ci=kind == "bars_ci")
    elif kind in ("profile", "curves"):
        _lines(ax, plot, colors, step=kind == "profile")
    else:
        raise ValueError(f"unknown plot kind {kind!r} in plot {plot.get('id')!r}")
    if not plot["series"]:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="#777")
    ax.set_xlabel(plot.get("x_label", ""))
    ax.set_ylabel(plot.get("y_label", ""))
    ax.grid(True, axis="y", color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if plot["series"]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)


def series_colors(model: dict) -> dict[str, str]:
    """One colour per series name across the whole page, so an entry keeps its colour."""
    names = list(
        dict.fromkeys(
            s["name"]
            for sec in model["sections"]
            for p in sec.get("plots", [])
            for s in p["series"]
        )
    )
    palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: to_hex(palette(i % palette.N)) for i, name in enumerate(names)}


# --- page -------------------------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
 background:#fff;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:2.2em;border-bottom:1px solid #ddd;
 padding-bottom:4px}h3{font-size:1.05em;margin:1.6em 0 .5em}
.meta{color:#555;font-size:.9em}.meta dt{font-weight:600;float:left;clear:left;width:9em}
.meta dd{margin:0 0 2px 9.5em}
nav.toc{background:#f6f7f9;border:1px solid #e3e5e8;border-radius:6px;padding:8px 16px;
 margin:16px 0;font-size:.92em}nav.toc ul{margin:4px 0;padding-left:1.2em}
a{color:#0b57d0;text-decoration:none}a:hover{text-decoration:underline}
.notes{color:#333}.notes li{margin:2px 0}
.tablewrap{overflow-x:auto}
table.lb{border-collapse:collapse;font-size:.9em;margin:4px 0 8px}
table.lb th,table.lb td{padding:4px 10px;border-bottom:1px solid #e6e6e6;text-align:left;
 white-space:nowrap}
table.lb th.num,table.lb td.num{text-align:right;font-variant-numeric:tabular-nums}
table.lb th button{font:inherit;font-weight:600;background:none;border:0;padding:0;
 cursor:pointer;color:inherit}
table.lb th .arrow{display:inline-block;width:1em;color:#0b57d0;font-size:.8em}
table.lb thead th{border-bottom:2px solid #bbb;background:#fafafa}
table.lb .ci{color:#777;font-size:.88em}
table.lb tr.main.has-prov{cursor:pointer}
table.lb tr.main.has-prov td:first-child::before{content:"\\25B8";color:#999;
 display:inline-block;width:1em}
table.lb tr.main.has-prov.open td:first-child::before{content:"\\25BE"}
table.lb tr.main:hover{background:#f3f6fb}
table.lb tr.prov td{background:#f8f9fb;white-space:normal;font-size:.92em;color:#333}
table.lb tr.prov dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:4px}
table.lb tr.prov dt{font-weight:600;color:#555}table.lb tr.prov dd{margin:0;
 font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95em;word-break:break-all}
figure.plot{margin:12px 0 20px}figure.plot figcaption{font-weight:600;margin-bottom:4px}
figure.plot svg{max-width:100%;height:auto}
.hint{color:#888;font-size:.85em}
"""

JS = """
(function(){
  function key(cell, kind){
    var v = cell.getAttribute("data-v");
    if (v === null || v === "") return null;
    return kind === "text" ? v : parseFloat(v);
  }
  function sortTable(table, th, col){
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("thead th").forEach(function(h){
      h.removeAttribute("aria-sort"); h.querySelector(".arrow").textContent = "";
    });
    th.setAttribute("aria-sort", dir);
    th.querySelector(".arrow").textContent = dir === "ascending" ? "\\u25B2" : "\\u25BC";
    var kind = th.getAttribute("data-kind"), sign = dir === "ascending" ? 1 : -1;
    var groups = Array.prototype.slice.call(table.tBodies);
    groups.sort(function(a, b){
      var x = key(a.rows[0].cells[col], kind), y = key(b.rows[0].cells[col], kind);
      if (x === null || y === null) return (x === null) - (y === null);
      if (kind === "text") return sign * x.localeCompare(y);
      return sign * (x - y);
    });
    groups.forEach(function(g){ table.appendChild(g); });
  }
  function toggle(row){
    var details = row.nextElementSibling;
    if (!details) return;
    details.hidden = !details.hidden;
    row.classList.toggle("open", !details.hidden);
    row.setAttribute("aria-expanded", String(!details.hidden));
  }
  document.querySelectorAll("table.lb").forEach(function(table){
    table.querySelectorAll("thead th").forEach(function(th, col){
      th.querySelector("button").addEventListener("click", function(){
        sortTable(table, th, col);
      });
    });
    table.querySelectorAll("tr.main.has-prov").forEach(function(row){
      row.addEventListener("click", function(){ toggle(row); });
      row.addEventListener("keydown", function(e){
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(row); }
      });
    });
  });
})();
"""

_e = html.escape


def _meta_html(meta: dict) -> str:
    rows = "".join(
        f"<dt>{_e(str(k).replace('_', ' '))}</dt><dd>{_e(_plain(v))}</dd>" for k, v in meta.items()
    )
    return f'<dl class="meta">{rows}</dl>' if rows else ""


def _cell_html(cell: Any, kind: str) -> str:
    cls = ' class="num"' if kind != "text" else ""
    data = f' data-v="{_e(sort_value(cell, kind))}"'
    if kind == "ci":
        value, bounds = fmt_ci(cell)
        return f'<td{cls}{data}>{_e(value)} <span class="ci">{_e(bounds)}</span></td>'
    return f"<td{cls}{data}>{_e(fmt_cell(cell, kind))}</td>"


def _table_html(table: dict) -> str:
    cols = table["columns"]
    head = "".join(
        f'<th scope="col" data-key="{_e(c["key"])}" data-kind="{_e(c["kind"])}"'
        f"{' class=num' if c['kind'] != 'text' else ''}>"
        f'<button type="button">{_e(c["label"])}</button><span class="arrow"></span></th>'
        for c in cols
    )
    bodies = []
    for row in table["rows"]:
        cells = "".join(_cell_html(row.get(c["key"]), c["kind"]) for c in cols)
        prov = row.get("_provenance")
        if not prov:
            bodies.append(f'<tbody><tr class="main">{cells}</tr></tbody>')
            continue
        items = provenance_items(prov)
        tip = _e("\n".join(f"{label}: {text}" for label, text in items))
        dl = "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in items)
        bodies.append(
            f'<tbody><tr class="main has-prov" tabindex="0" aria-expanded="false" title="{tip}">'
            f'{cells}</tr><tr class="prov" hidden><td colspan="{len(cols)}"><dl>{dl}</dl>'
            "</td></tr></tbody>"
        )
    hint = any(r.get("_provenance") for r in table["rows"])
    return (
        f'<h3 id="t-{_e(table["id"])}">{_e(table["title"])}</h3><div class="tablewrap">'
        f'<table class="lb" data-table-id="{_e(table["id"])}"><thead><tr>{head}</tr></thead>'
        f"{''.join(bodies)}</table></div>"
        + (
            '<p class="hint">Click a header to sort; click a row for its provenance.</p>'
            if hint
            else '<p class="hint">Click a header to sort.</p>'
        )
    )


def _section_html(section: dict, colors: dict[str, str]) -> str:
    parts = [f'<section id="sec-{_e(section["id"])}"><h2>{_e(section["title"])}</h2>']
    if section.get("notes"):
        notes = "".join(f"<li>{_e(n)}</li>" for n in section["notes"])
        parts.append(f'<ul class="notes">{notes}</ul>')
    parts += [_table_html(t) for t in section.get("tables", [])]
    for plot in section.get("plots", []):
        parts.append(
            f'<figure class="plot" id="p-{_e(plot["id"])}" data-plot-id="{_e(plot["id"])}" '
            f'data-plot-kind="{_e(plot["kind"])}"><figcaption>{_e(plot["title"])}</figcaption>'
            f"{plot_svg(plot, colors)}</figure>"
        )
    return "".join(parts) + "</section>"


def _toc_html(model: dict) -> str:
    items = []
    for s in model["sections"]:
        sub = [
            f'<li><a href="#t-{_e(t["id"])}">{_e(t["title"])}</a></li>' for t in s.get("tables", [])
        ]
        sub += [
            f'<li><a href="#p-{_e(p["id"])}">{_e(p["title"])}</a></li>' for p in s.get("plots", [])
        ]
        inner = f"<ul>{''.join(sub)}</ul>" if sub else ""
        items.append(f'<li><a href="#sec-{_e(s["id"])}">{_e(s["title"])}</a>{inner}</li>')
    return f'<nav class="toc"><strong>Contents</strong><ul>{"".join(items)}</ul></nav>'


def render_html(model: dict) -> str:
    """The whole page as one string: nothing in it refers to a file or a network."""
    colors = series_colors(model)
    body = "".join(_section_html(s, colors) for s in model["sections"])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{_e(model["title"])}</title><link rel="icon" href="data:,">'
        f"<style>{CSS}</style></head><body><main>"
        f'<h1>{_e(model["title"])}</h1><p class="meta">Created {_e(str(model["created"]))}</p>'
        f"{_meta_html(model.get('meta') or {})}{_toc_html(model)}{body}"
        f"</main><script>{JS}</script></body></html>\n"
    )
