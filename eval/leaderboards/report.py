"""Write a leaderboard report model as Markdown, CSV, JSON and one HTML page.

The model (built by :mod:`.aggregate`) is the single source: ``report.json`` keeps it whole
so a page can be re-rendered or compared later, the CSVs carry every number at full
precision for other tools, the Markdown is for a README or a pull request, and the HTML is
for reading. Every file is written atomically, so a crash never leaves half a report.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from pilot.errors import UserError
from pilot.eval.leaderboards.html import fmt_cell, provenance_items, render_html
from pilot.files import atomic_write

SECTION_IDS = ("atari", "driving", "navigation", "control")
COLUMN_KINDS = ("text", "int", "number", "ci")
PLOT_KINDS = ("bars_ci", "profile", "grouped_bars", "curves")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # table ids become file names


def model_problem(model: Any) -> str | None:
    """The first thing that makes ``model`` not a report model, or None when it is one."""
    if not isinstance(model, dict):
        return "not a JSON object"
    for key, kind in (("title", str), ("created", str), ("meta", dict), ("sections", list)):
        if not isinstance(model.get(key), kind):
            return f"'{key}' missing or not a {kind.__name__}"
    ids: set[str] = set()
    plot_ids: set[str] = set()  # a table and a plot may share an id (the page prefixes them)
    for section in model["sections"]:
        if not isinstance(section, dict) or section.get("id") not in SECTION_IDS:
            return f"a section without an id among {', '.join(SECTION_IDS)}"
        for table in section.get("tables", []):
            tid = table.get("id") if isinstance(table, dict) else None
            if not isinstance(tid, str) or not _SAFE_ID.match(tid) or tid in ids:
                return f"table id {tid!r} is missing, repeated or not a plain file name"
            ids.add(tid)
            for col in table.get("columns", []):
                if col.get("kind") not in COLUMN_KINDS:
                    return (
                        f"column {col.get('key')!r} of table {tid!r} has kind {col.get('kind')!r}"
                    )
            if not isinstance(table.get("rows"), list):
                return f"table {tid!r} has no rows list"
        for plot in section.get("plots", []):
            pid = plot.get("id") if isinstance(plot, dict) else None
            if not isinstance(pid, str) or pid in plot_ids:
                return f"plot id {pid!r} is missing or repeated"
            plot_ids.add(pid)
            if plot.get("kind") not in PLOT_KINDS:
                return f"plot {pid!r} has kind {plot.get('kind')!r}"
            if not isinstance(plot.get("series"), list):
                return f"plot {pid!r} has no series list"
    return None


def load_model(path: Path) -> dict:
    """Read a ``report.json`` back (to re-render or compare it); anything else is refused
    with a one-line message rather than failing later on a missing key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"no report file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read report file {path}: {exc}") from None
    try:
        model = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not a leaderboard report (not JSON: {exc})") from None
    problem = model_problem(model)
    if problem:
        raise UserError(f"{path} is not a leaderboard report ({problem})")
    return model


def _md_text(text: Any) -> str:
    """Model text as literal Markdown: no raw HTML, no table breaks."""
    # Markdown renders < and & as HTML; > only starts a quote at a line's head, never in a cell
    return (
        str(text).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|").replace("\n", " ")
    )


def _md_table(table: dict) -> list[str]:
    cols = table["columns"]
    lines = [
        "| " + " | ".join(_md_text(c["label"]) for c in cols) + " |",
        "|" + "|".join("---" if c["kind"] == "text" else "---:" for c in cols) + "|",
    ]
    for row in table["rows"]:
        cells = (_md_text(fmt_cell(row.get(c["key"]), c["kind"])) for c in cols)
        lines.append("| " + " | ".join(cells) + " |")
    provs = [(row, row["_provenance"]) for row in table["rows"] if row.get("_provenance")]
    if provs:
        lines += ["", "Provenance:", ""]
        names = [c["key"] for c in cols if c["kind"] == "text"]  # what tells the rows apart
        for row, prov in provs:
            name = " / ".join(_md_text(row.get(k, "")) for k in names)
            items = "; ".join(f"{label} {_md_text(text)}" for label, text in provenance_items(prov))
            lines.append(f"- {name}: {items}")
    return lines


def render_markdown(model: dict) -> str:
    """The report as Markdown: metadata, then per section its notes and tables (the plots
    are named, they live in the HTML page)."""
    lines = [f"# {_md_text(model['title'])}", "", f"Created {_md_text(model['created'])}", ""]
    for key, value in (model.get("meta") or {}).items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"- {str(key).replace('_', ' ')}: {_md_text(value)}")
    for section in model["sections"]:
        lines += ["", f"## {_md_text(section['title'])}", ""]
        for note in section.get("notes", []):
            lines += [_md_text(note), ""]
        for table in section.get("tables", []):
            lines += [f"### {_md_text(table['title'])}", "", *_md_table(table), ""]
        if section.get("plots"):
            titles = ", ".join(_md_text(p["title"]) for p in section["plots"])
            lines += [f"Plots in report.html: {titles}.", ""]
    text = "\n".join(lines).rstrip() + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


def _raw(value: Any) -> Any:
    return "" if value is None else value


def render_csv(table: dict) -> str:
    """One table at full precision: a ci column becomes ``key``, ``key_low``, ``key_high``;
    rows with provenance carry it as compact JSON in a last column."""
    header, getters = [], []
    for col in table["columns"]:
        key = col["key"]
        if col["kind"] == "ci":
            for part, name in (("value", key), ("low", f"{key}_low"), ("high", f"{key}_high")):
                header.append(name)
                getters.append(lambda r, k=key, p=part: _raw((r.get(k) or {}).get(p)))
        else:
            header.append(key)
            getters.append(lambda r, k=key: _raw(r.get(k)))
    with_prov = any(row.get("_provenance") for row in table["rows"])
    if with_prov:
        header.append("provenance")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in table["rows"]:
        cells = [get(row) for get in getters]
        if with_prov:
            prov = row.get("_provenance")
            cells.append(json.dumps(prov, sort_keys=True, allow_nan=False) if prov else "")
        writer.writerow(cells)
    return buf.getvalue()


def write_report(model: dict, out_dir: Path) -> dict[str, Path]:
    """Write ``report.md``, ``<table id>.csv`` per table, ``report.json`` and ``report.html``
    into ``out_dir``; returns file name -> path. Everything is rendered before the first
    write, so a model that cannot be written (NaN, a bad id) leaves the folder untouched."""
    problem = model_problem(model)
    if problem:
        raise ValueError(f"not a report model: {problem}")
    out_dir = Path(out_dir)
    files = {"report.json": json.dumps(model, indent=1, allow_nan=False) + "\n"}
    files["report.md"] = render_markdown(model)
    for section in model["sections"]:
        for table in section.get("tables", []):
            files[f"{table['id']}.csv"] = render_csv(table)
    files["report.html"] = render_html(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in files.items():
        atomic_write(out_dir / name, text.encode("utf-8"))
        paths[name] = out_dir / name
    return paths
