"""One self-contained HTML page for a :class:`~scadrt.report.RunReport`.

The page shows a header (program, status and failure text, wall time, GiB·s, largest peak RSS,
bytes moved), the DAG (compute elements in layers by dependency depth, memory elements as
cylinders tied by dashed lines to their corunning compute elements), a timeline with one bar per
compute instance attempt and per memory element instance, total memory in use over time, and a
table of every instance.

It is self-contained, with inline CSS and SVG drawn here and no script, because run reports are
archived next to results and opened offline, from CI artifacts or on machines without network:
the page must look the same in ten years as today, with nothing to fetch. The output depends on
the report only, so identical runs give identical pages (diffable, cacheable).
"""

from __future__ import annotations

import html
import math
from collections import defaultdict

from scadrt.report import InstanceRun, MemoryRun, RunReport

__all__ = ["render_html"]

_MiB = 2**20
_LABEL_W = 190  # left gutter of the timeline and memory chart, for row labels and y ticks
_PLOT_W = 960  # with the gutter, fits a 1280 px window with a scrollbar and no horizontal scroll
_ROW_H = 16  # fixed so hundreds of rows stay legible; the timeline box scrolls instead
_BOX_W, _BOX_H, _COL_W, _ROW_GAP = 150, 34, 210, 54
_SEVERITY = {"ok": 0, "failed": 1, "crashed": 2}

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:22px 0 6px}
.status{display:inline-block;padding:1px 8px;border-radius:4px;color:#fff;font-weight:600}
.status-ok{background:#2e7d32}.status-failed{background:#c62828}.status-interrupted{background:#ef6c00}
pre.failure{background:#fdecea;border:1px solid #f5c2c0;padding:8px;white-space:pre-wrap;max-height:300px;overflow:auto}
dl.totals{display:grid;grid-template-columns:max-content max-content;gap:2px 16px;margin:8px 0}
dl.totals dt{color:#555}dl.totals dd{margin:0;font-variant-numeric:tabular-nums}
.scroll{max-height:70vh;overflow:auto;border:1px solid #ddd}.scroll svg{display:block}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;
margin-right:4px;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#222}svg .tick{fill:#666}svg .grid{stroke:#eee}
svg .axis{stroke:#999}.node-none{fill:#e0e0e0}
.bar-ok,.node-ok,.lg-ok{fill:#43a047;background:#43a047}.bar-failed,.node-failed,.lg-failed{fill:#e53935;background:#e53935}
.bar-crashed,.node-crashed,.lg-crashed{fill:#6a1b9a;background:#6a1b9a}
.bar-memory,.mem-node,.lg-memory{fill:#90caf9;background:#90caf9}.node{fill-opacity:.85;stroke:#333}
.mem-node{stroke:#1565c0}.dep{stroke:#444;stroke-width:1.4}.corun{stroke:#1565c0;stroke-dasharray:5 4}
.mem-line{fill:none;stroke:#1565c0;stroke-width:1.5}.mem-area{fill:#90caf9;fill-opacity:.35}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}td,th{border:1px solid #ddd;padding:2px 6px}
th{background:#f4f4f4;text-align:left}td.num{text-align:right}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _bytes(n: float) -> str:
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if n >= 1024**power:
            return f"{n / 1024**power:.1f} {unit}"
    return f"{int(n)} B"


def _num(value: float) -> str:
    # round first so float noise (0.30000000000000004) never reaches a label
    return f"{round(value, 9):g}"


def _ticks(top: float, *, cover: bool = False) -> list[float]:
    """About eight round tick values (1, 2 or 5 × 10^k apart) from 0 to ``top``, or past it if ``cover``."""
    raw = top / 8
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    count = math.ceil(top / step - 1e-9) if cover else int(top / step + 1e-9)
    return [i * step for i in range(count + 1)]


def _instance_label(i: InstanceRun) -> str:
    return f"{i.element}[{i.index}]" + (f" #{i.attempt}" if i.attempt else "")


def _compute_names(report: RunReport) -> list[str]:
    names = list(dict.fromkeys(report.order))
    extra = {n for edge in report.edges for n in edge} | {i.element for i in report.instances}
    extra |= {c for _, c in report.corunning}
    return names + sorted(extra - set(names))


def _memory_names(report: RunReport) -> list[str]:
    return list(dict.fromkeys([m.element for m in report.memory] + [m for m, _ in report.corunning]))


def _sorted_instances(report: RunReport) -> list[InstanceRun]:
    rank = {name: k for k, name in enumerate(_compute_names(report))}
    return sorted(report.instances, key=lambda i: (rank[i.element], i.index, i.attempt, i.start))


def _sorted_memory(report: RunReport) -> list[MemoryRun]:
    rank = {name: k for k, name in enumerate(_memory_names(report))}
    return sorted(report.memory, key=lambda m: (rank[m.element], m.start, m.instance))


def _span(report: RunReport) -> float:
    ends = [report.wall] + [i.end for i in report.instances] + [m.end for m in report.memory]
    span = max(ends)
    return span if span > 0 else 1.0  # a zero-duration run still gets a drawable axis


def _depths(names: list[str], edges: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """Longest-path depth from the roots; Kahn's order so each node is placed after all parents."""
    children: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(names, 0)
    for parent, child in dict.fromkeys(edges):
        children[parent].append(child)
        indegree[child] += 1
    depth = dict.fromkeys(names, 0)
    ready = [n for n in names if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for child in children[node]:
            depth[child] = max(depth[child], depth[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return depth  # nodes on a cycle (never valid, but never crash on it) keep a partial depth


def _node_status(report: RunReport) -> dict[str, str]:
    """Worst status over each element's final attempts: a retried-then-ok instance counts as ok."""
    final: dict[tuple[str, int], InstanceRun] = {}
    for i in report.instances:
        key = (i.element, i.index)
        if key not in final or i.attempt >= final[key].attempt:
            final[key] = i
    status: dict[str, str] = {}
    for (element, _), i in sorted(final.items()):
        if _SEVERITY.get(i.status, 2) >= _SEVERITY.get(status.get(element, "ok"), 2):
            status[element] = i.status if i.status in _SEVERITY else "crashed"
    return status


def _short(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _dag_svg(report: RunReport) -> str:
    computes, memories = _compute_names(report), _memory_names(report)
    depth = _depths(computes, report.edges)
    corun: dict[str, list[str]] = defaultdict(list)
    for mem, comp in dict.fromkeys(report.corunning):
        corun[mem].append(comp)
    columns: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for c in computes:
        columns[depth[c]].append(("compute", c))
    for m in memories:  # a memory element sits in the layer of its first corunning element
        columns[min((depth[c] for c in corun[m]), default=0)].append(("memory", m))
    pos: dict[tuple[str, str], tuple[float, float]] = {}
    for col, nodes in columns.items():
        for row, node in enumerate(nodes):
            pos[node] = (20 + col * _COL_W, 20 + row * _ROW_GAP)
    width = 40 + max(columns, default=0) * _COL_W + _BOX_W
    height = 40 + (max((len(v) for v in columns.values()), default=1) - 1) * _ROW_GAP + _BOX_H
    parts = [
        f'<svg id="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
    ]
    if not pos:
        parts.append('<text x="20" y="30">no elements</text>')
    half_w, half_h = _BOX_W / 2, _BOX_H / 2
    # lines first so that the boxes drawn over them hide their ends
    for mem in memories:
        mx, my = pos[("memory", mem)]
        for comp in corun[mem]:
            cx, cy = pos[("compute", comp)]
            parts.append(f'<line class="corun" x1="{mx + half_w:.1f}" y1="{my + half_h:.1f}" '
                         f'x2="{cx + half_w:.1f}" y2="{cy + half_h:.1f}"/>')
    for parent, child in dict.fromkeys(report.edges):
        px, py = pos[("compute", parent)]
        cx, cy = pos[("compute", child)]
        parts.append(f'<line class="dep" x1="{px + _BOX_W:.1f}" y1="{py + half_h:.1f}" x2="{cx:.1f}" '
                     f'y2="{cy + half_h:.1f}" marker-end="url(#dag-arrow)"/>')
    status = _node_status(report)
    indices = {(i.element, i.index) for i in report.instances}
    for comp in computes:
        x, y = pos[("compute", comp)]
        count = sum(1 for e, _ in indices if e == comp)
        state = status.get(comp, "none")
        tip = f"{comp}: {count} instance(s), {state}"
        label = _short(comp) + (f" ×{count}" if count > 1 else "")
        parts.append(f'<g><title>{_e(tip)}</title><rect class="node node-{state}" x="{x}" y="{y}" '
                     f'width="{_BOX_W}" height="{_BOX_H}" rx="4"/><text x="{x + half_w}" y="{y + half_h + 4}" '
                     f'text-anchor="middle">{_e(label)}</text></g>')
    ry = 5  # cylinder lid: an ellipse of this half-height
    for mem in memories:
        x, y = pos[("memory", mem)]
        size = sum(m.size for m in report.memory if m.element == mem)
        body = (f"M{x},{y + ry} v{_BOX_H - 2 * ry} a{half_w},{ry} 0 0 0 {_BOX_W},0 v{-(_BOX_H - 2 * ry)} "
                f"a{half_w},{ry} 0 0 0 {-_BOX_W},0 a{half_w},{ry} 0 0 0 {_BOX_W},0")
        parts.append(f'<g><title>{_e(f"{mem}: memory element, {_bytes(size)}")}</title>'
                     f'<path class="mem-node" d="{body}"/><text x="{x + half_w}" y="{y + half_h + 7}" '
                     f'text-anchor="middle">{_e(_short(mem))}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)


def _time_axis(span: float, top: float, bottom: float, label_y: float) -> list[str]:
    out = []
    for t in _ticks(span):
        x = _LABEL_W + t / span * _PLOT_W
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>'
                   f'<text class="tick" x="{x:.1f}" y="{label_y}" text-anchor="middle">{_num(t)} s</text>')
    return out


def _timeline_svg(report: RunReport) -> str:
    span = _span(report)
    rows: list[tuple[str, str, float, float, str]] = []
    for i in _sorted_instances(report):
        label = _instance_label(i)
        tip = (f"{label}: {i.status}, {_num(i.start)}–{_num(i.end)} s ({_num(i.duration)} s), "
               f"peak RSS {_bytes(i.peak_rss)}, pid {i.pid}")
        rows.append((label, i.status if i.status in _SEVERITY else "crashed", i.start, i.end, tip))
    for m in _sorted_memory(report):
        label = f"{m.element}[{m.instance}]"
        tip = f"{label}: memory, {m.transport}, {_bytes(m.size)}, {_num(m.start)}–{_num(m.end)} s"
        rows.append((label, "memory", m.start, m.end, tip))
    top = 24
    height = top + max(len(rows), 1) * _ROW_H + 8
    width = _LABEL_W + _PLOT_W + 20
    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">', *_time_axis(span, top, height, top - 4)]
    if not rows:
        parts.append(f'<text x="{_LABEL_W + 8}" y="{top + 12}">no instances</text>')
    for k, (label, kind, start, end, tip) in enumerate(rows):
        y = top + k * _ROW_H
        x0 = _LABEL_W + max(start, 0.0) / span * _PLOT_W
        w = max((end - max(start, 0.0)) / span * _PLOT_W, 1.0)  # instantaneous work stays visible
        parts.append(f'<text x="{_LABEL_W - 6}" y="{y + 12}" text-anchor="end">{_e(_short(label, 28))}</text>'
                     f'<rect class="bar bar-{kind}" x="{x0:.1f}" y="{y + 2}" width="{w:.1f}" '
                     f'height="{_ROW_H - 4}"><title>{_e(tip)}</title></rect>')
    parts.append("</svg>")
    return "\n".join(parts)


def _memory_steps(report: RunReport) -> list[tuple[float, int]]:
    """(time, bytes in use from then on): memory elements' sizes plus running instances' RSS."""
    deltas: list[tuple[float, int]] = []
    for m in report.memory:
        deltas += [(m.start, m.used or m.size), (m.end, -(m.used or m.size))]  # resident, when measured
    for i in report.instances:
        # outside [start, end] a sample belongs to no bar, so it would draw memory nobody held
        samples = sorted((t, rss) for t, rss in i.rss_samples if i.start <= t <= i.end)
        if not samples:
            samples = [(i.start, i.peak_rss)]
        level = samples[0][1]  # the first sample stands for the unsampled start of the instance
        deltas.append((i.start, level))
        for t, rss in samples[1:]:
            deltas.append((t, rss - level))
            level = rss
        deltas.append((i.end, -level))
    steps: list[tuple[float, int]] = [(0.0, 0)]
    total = 0
    for t, d in sorted(deltas):
        total += d
        if steps[-1][0] == t:
            steps[-1] = (t, total)
        else:
            steps.append((t, total))
    return steps


def _memory_svg(report: RunReport) -> str:
    span, steps = _span(report), _memory_steps(report)
    peak = max(v for _, v in steps)
    top_mib = max(peak / _MiB, 1.0)  # an idle run still gets a 0–1 MiB axis, not a division by zero
    ticks = _ticks(top_mib, cover=True)
    top_mib = ticks[-1]
    plot_h, top = 200, 12
    width, height = _LABEL_W + _PLOT_W + 20, top + plot_h + 36

    def x(t: float) -> float:
        return _LABEL_W + min(max(t, 0.0), span) / span * _PLOT_W

    def y(v: float) -> float:
        return top + plot_h - v / _MiB / top_mib * plot_h

    parts = [f'<svg id="memory" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">', *_time_axis(span, top, top + plot_h, top + plot_h + 14)]
    for v in ticks:
        parts.append(f'<line class="grid" x1="{_LABEL_W}" y1="{y(v * _MiB):.1f}" x2="{_LABEL_W + _PLOT_W}" '
                     f'y2="{y(v * _MiB):.1f}"/><text class="tick" x="{_LABEL_W - 6}" y="{y(v * _MiB) + 4:.1f}" '
                     f'text-anchor="end">{_num(v)} MiB</text>')
    path = [f"M{x(0):.1f},{y(0):.1f}"]
    for t, v in steps:
        path.append(f"H{x(t):.1f}V{y(v):.1f}")
    path.append(f"H{x(span):.1f}")
    line = "".join(path)
    parts += [f'<path class="mem-area" d="{line}V{y(0):.1f}Z"/>',
              f'<path class="mem-line" d="{line}"><title>peak {_e(_bytes(peak))}</title></path>',
              f'<line class="axis" x1="{_LABEL_W}" y1="{top}" x2="{_LABEL_W}" y2="{top + plot_h}"/>',
              f'<line class="axis" x1="{_LABEL_W}" y1="{top + plot_h}" x2="{_LABEL_W + _PLOT_W}" '
              f'y2="{top + plot_h}"/>',
              f'<text x="{_LABEL_W + _PLOT_W / 2}" y="{height - 6}" text-anchor="middle">time (s) — peak '
              f"{_e(_bytes(peak))}</text>", "</svg>"]
    return "\n".join(parts)


def _table(report: RunReport) -> str:
    head = ["element", "index", "attempt", "status", "start (s)", "duration (s)", "pid", "peak RSS (MiB)",
            "cpu user (s)", "cpu sys (s)", "read / written"]
    rows = ["<table id=\"instances\"><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for i in _sorted_instances(report):
        moved = "; ".join(f"{kind}: {_bytes(t.get('read', 0))} / {_bytes(t.get('written', 0))}"
                          for kind, t in sorted(i.transfer.items()))
        cells = [(i.element, ""), (i.index, "num"), (i.attempt, "num"), (i.status, ""), (f"{i.start:.3f}", "num"),
                 (f"{i.duration:.3f}", "num"), (i.pid, "num"), (f"{i.peak_rss / _MiB:.1f}", "num"),
                 (f"{i.cpu_user:.2f}", "num"), (f"{i.cpu_system:.2f}", "num"), (moved, "")]
        rows.append("<tr>" + "".join(f'<td class="{c}">{_e(v)}</td>' for v, c in cells) + "</tr>")
    if not report.instances:
        rows.append(f'<tr><td colspan="{len(head)}">no instances</td></tr>')
    rows.append("</tbody></table>")
    return "\n".join(rows)


def render_html(report: RunReport) -> str:
    """The whole page for ``report``: no network, no script, same report → same bytes."""
    totals = report.to_dict()["totals"]
    failure = f'<pre class="failure">{_e(report.failure)}</pre>' if report.failure else ""
    stats = [("wall time", f"{report.wall:.3f} s"), ("GiB·s", f"{report.gib_seconds:.4f}"),
             ("largest instance peak RSS", _bytes(report.peak_rss)), ("bytes read", _bytes(totals["bytes_read"])),
             ("bytes written", _bytes(totals["bytes_written"])),
             ("instances", f"{len(report.instances)} compute, {len(report.memory)} memory")]
    legend = "".join(f'<span><i class="lg-{k}"></i>{k}</span>' for k in ("ok", "failed", "crashed", "memory"))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Scad run: {_e(report.program)}</title>", f"<style>{_CSS}</style></head><body>",
        f'<h1>{_e(report.program)} <span class="status status-{_e(report.status)}">{_e(report.status)}</span></h1>',
        failure, '<dl class="totals">' + "".join(f"<dt>{k}</dt><dd>{_e(v)}</dd>" for k, v in stats) + "</dl>",
        "<h2>DAG</h2>", '<div class="scroll">', _dag_svg(report), "</div>",
        "<h2>Timeline</h2>", f'<p class="legend">{legend}</p>', '<div class="scroll">', _timeline_svg(report), "</div>",
        "<h2>Memory in use</h2>", _memory_svg(report),
        "<h2>Instances</h2>", _table(report), "</body></html>", "",
    ])
