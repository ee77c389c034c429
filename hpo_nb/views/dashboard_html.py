"""The dashboard's HTML pieces (tiles, gallery, details, static summary), from view-model data.

Colours come from JupyterLab's theme CSS variables (``--jp-*``, with light fallbacks for pages
without them: nbconvert HTML, GitHub), so the dashboard reads as well in a dark theme as in the
light one, in JupyterLab and in Voila. Widths are never fixed: rows wrap, wide tables scroll
inside their own box.
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from ..progress import FinishedTrial, Snapshot
from . import viewmodel as vm

TEXT = "var(--jp-ui-font-color1, #212121)"
MUTED = "var(--jp-ui-font-color2, #616161)"
BORDER = "var(--jp-border-color2, #e0e0e0)"
TRACK = "var(--jp-layout-color3, #eeeeee)"
ACCENT = "var(--jp-brand-color1, #1976d2)"
STATE_COLOURS = {"complete": "var(--jp-success-color1, #2e7d32)", "pruned": "var(--jp-warn-color1, #8d6e00)",
                 "stopped": MUTED, "failed": "var(--jp-error-color1, #c62828)"}
CHIP_COLOURS = {"running": ACCENT, "stopping": "var(--jp-warn-color1, #8d6e00)", "stopped": MUTED,
                "finished": "var(--jp-success-color1, #2e7d32)", "not-started": MUTED, "not-running": MUTED}


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def tile_html(tile: vm.Tile) -> str:
    note = f'<div class="hpo-tile-note" style="font-size:11px;color:{MUTED}">{esc(tile.note)}</div>' if tile.note else ""
    return (f'<div style="padding:6px 12px;border:1px solid {BORDER};border-radius:6px;line-height:1.35;'
            f'box-sizing:border-box;color:{TEXT}">'
            f'<div class="hpo-tile-label" style="font-size:11px;color:{MUTED}">{esc(tile.label)}</div>'
            f'<div class="hpo-tile-value" style="font-size:20px;font-weight:600">{esc(tile.value)}</div>{note}</div>')


def chip_html(text: str, kind: str) -> str:
    """A quiet outlined badge for the search's state (no button once nothing runs)."""
    colour = CHIP_COLOURS.get(kind, MUTED)
    return (f'<span class="hpo-state hpo-state-{esc(kind)}" style="display:inline-block;padding:1px 10px;'
            f'border:1px solid {colour};color:{colour};border-radius:10px;font-size:12px;line-height:1.6">'
            f'{esc(text)}</span>')


def notices_html(notices: Sequence[str]) -> str:
    return "".join(f'<div style="background:rgba(255,152,0,0.12);border-left:4px solid var(--jp-warn-color1, #ff9800);'
                   f'color:{TEXT};padding:4px 8px;margin:2px 0">{esc(n)}</div>' for n in notices)


def gallery_html(rows: list[dict[str, str]], columns: Sequence[str] = (), sort_column: str = "",
                 descending: bool = True) -> str:
    """The finished trials as a table (one column per searched parameter), inside a box that
    scrolls sideways when the table is wider than the output. The sorted column's header says
    so (▼ high first, ▲ low first)."""
    if not rows:
        return f'<div style="color:{MUTED};padding:4px;line-height:1.35">No finished trials yet.</div>'
    columns = list(columns) or list(rows[0])
    numeric = {"Trial", "Accuracy", "Score", "Health", "Duration"}

    def th(c: str) -> str:
        arrow = (" ▼" if descending else " ▲") if c == sort_column else ""
        align = "right" if c in numeric else "left"
        return (f'<th style="text-align:{align};padding:2px 8px;white-space:nowrap;font-weight:600">'
                f'{esc(c)}{arrow}</th>')

    body = []
    for r in rows:
        cells = []
        for c in columns:
            style = "padding:2px 8px;white-space:nowrap"
            if c in numeric:
                style += ";text-align:right;font-variant-numeric:tabular-nums"
            if c == "State":
                style += f";color:{STATE_COLOURS.get(r['State'], TEXT)};font-weight:600"
            if c == "Architecture":
                style += f";font-size:11px;color:{MUTED}"
            cells.append(f'<td style="{style}">{esc(r.get(c, ""))}</td>')
        muted = ";opacity:0.75" if r["State"] in ("stopped", "failed") else ""
        body.append(f'<tr class="hpo-row" data-trial="{esc(r["Trial"])}" data-state="{esc(r["State"])}" '
                    f'style="border-top:1px solid {BORDER}{muted}">{"".join(cells)}</tr>')
    return ('<div class="hpo-gallery-scroll hpo-scroll" style="overflow-x:auto;max-width:100%">'
            f'<table class="hpo-gallery" style="border-collapse:collapse;font-size:12px;line-height:1.5;color:{TEXT}">'
            f'<thead><tr style="border-bottom:1px solid {BORDER}">{"".join(th(c) for c in columns)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def details_title(t: FinishedTrial | None) -> str:
    """The collapsible details section's title."""
    if t is None:
        return "Details"
    return f"Details · trial {t.trial} · {t.state} · accuracy {vm.fmt_pct(t.accuracy, 2)} · score {vm.fmt_score(t.score)}"


def details_html(t: FinishedTrial | None) -> str:
    """Everything stored about one finished trial: metrics, health, params, layers."""
    if t is None:
        return f'<div class="hpo-details" style="color:{MUTED}">Pick a trial to see its details.</div>'
    parts = [f'<div><b>Trial {t.trial}</b> · <span style="color:{STATE_COLOURS.get(t.state, TEXT)}">'
             f'{esc(t.state)}</span> · accuracy {esc(vm.fmt_pct(t.accuracy, 2))} · score {esc(vm.fmt_score(t.score))}'
             f' · {esc(vm.fmt_duration(t.duration_s))}</div>']
    if t.state == "stopped":
        parts.append(f'<div style="color:{MUTED}">Stopped before its last epoch: partly trained, so it is '
                     'neither counted toward the budget nor ranked with complete trials.</div>')
    if t.error:
        parts.append(f'<div style="color:{STATE_COLOURS["failed"]}">{esc(t.error)}</div>')
    blocks = []
    if t.params:
        blocks.append(_kv_table("Hyperparameters", {k: vm.fmt_value(v) for k, v in sorted(t.params.items())}))
    if t.health:
        blocks.append(_kv_table("Health", {k: f"{v:.3f}" for k, v in t.health.items()
                                          if isinstance(v, (int, float))}))
    layers = t.architecture.get("layers") or []
    if layers:
        head = "".join(f'<th style="text-align:left;padding:1px 6px">{c}</th>'
                       for c in ("Layer", "Type", "Output", "Params", "Activation"))
        body = "".join(
            "<tr>" + "".join(f'<td style="padding:1px 6px;white-space:nowrap">{esc(v)}</td>' for v in (
                layer.get("name", ""), layer.get("type", ""), _shape_text(layer.get("output_shape")),
                vm.fmt_count(layer.get("params") or 0), layer.get("activation") or "")) + "</tr>"
            for layer in layers)
        blocks.append(f'<div class="hpo-scroll" style="margin-top:4px;max-width:100%;overflow-x:auto"><b>Architecture</b> · '
                      f'{esc(vm.arch_summary(t.architecture))}'
                      f'<table style="font-size:11px;border-collapse:collapse"><tr>{head}</tr>{body}</table></div>')
    parts.append(f'<div style="display:flex;gap:28px;align-items:flex-start;flex-wrap:wrap">{"".join(blocks)}</div>')
    return f'<div class="hpo-details" style="font-size:12px;line-height:1.35;color:{TEXT}">{"".join(parts)}</div>'


def _kv_table(title: str, values: Mapping[str, str]) -> str:
    rows = "".join(f'<tr><td style="padding:1px 6px;color:{MUTED}">{esc(k)}</td>'
                   f'<td style="padding:1px 6px">{esc(v)}</td></tr>' for k, v in values.items())
    return (f'<div style="margin-top:4px"><b>{esc(title)}</b>'
            f'<table style="font-size:11px;border-collapse:collapse">{rows}</table></div>')


def _shape_text(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        return "×".join("?" if d is None else str(d) for d in shape)
    return "" if shape is None else str(shape)


def test_html(line: str | None) -> str:
    if not line:
        return ""
    return (f'<div class="hpo-test" style="padding:4px 8px;margin:4px 0;border-left:4px solid '
            f'{STATE_COLOURS["complete"]};background:rgba(46,125,50,0.10);color:{TEXT}">{esc(line)}</div>')


def summary_html(s: Snapshot, title: str = "", evaluation: str | None = None,
                 params: Sequence[str] | None = None, majority_rate: float | None = None,
                 metric: str = "accuracy") -> str:
    """The HTML fallback shown where widgets cannot render (nbconvert offline, GitHub);
    ``evaluation``, ``majority_rate`` and ``metric`` as for ``viewmodel.summary_text``;
    ``params``: the gallery's parameter columns (``viewmodel.gallery_params``)."""
    pct = int(round(100 * vm.overall_fraction(s)))
    bar = (f'<div style="background:{TRACK};max-width:420px;height:10px;border-radius:5px">'
           f'<div style="background:{ACCENT};width:{pct}%;height:10px;border-radius:5px"></div></div>')
    tiles_row = "".join(tile_html(t) for t in vm.tiles(s, majority_rate, metric))
    running = "".join(f"<div>{esc(vm.trial_label(t))} <span style='color:{MUTED}'>{esc(vm.trial_metrics(t))}</span></div>"
                      for t in s.running)
    names = vm.gallery_params(s, params)
    return (f'<div class="hpo-summary" style="font-family:sans-serif;font-size:13px;line-height:1.35;color:{TEXT}">'
            f'<div><b>hpo-nb</b> · {esc(title)} {chip_html(*vm.state_chip(s))}</div>{notices_html(s.notices)}'
            f'<div style="margin:4px 0">{bar}<div>{esc(vm.overall_label(s))}</div></div>'
            f'<div style="display:flex;gap:8px;margin:6px 0;flex-wrap:wrap">{tiles_row}</div>'
            f'{test_html(evaluation)}{running}'
            f'{gallery_html(vm.gallery_rows(s, params=names), vm.gallery_columns(names), "score")}</div>')
