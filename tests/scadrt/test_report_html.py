"""The run report page: its structure on hand-built reports, then what headless Chromium draws."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest

from scadrt.report import InstanceRun, MemoryRun, RunReport
from scadrt.report_html import _memory_steps, render_html

MiB = 2**20
FAILURE = 'ValueError: <script>alert("x")</script> & more'


def _inst(element: str, index: int, start: float, end: float, status: str = "ok", *, attempt: int = 0,
          rss: int = 10 * MiB, samples: tuple[tuple[float, int], ...] = ()) -> InstanceRun:
    return InstanceRun(element=element, index=index, attempt=attempt, status=status, start=start, end=end,
                       pid=1000 + index, peak_rss=rss, cpu_user=0.5, cpu_system=0.1, rss_samples=samples,
                       transfer={"tcp": {"read": 2048, "written": 4096}})


def fan_out() -> RunReport:
    """split → work ×3 (parallel, work[2] fails) → merge (never ran); memory element buf."""
    return RunReport(
        program="fan_out", status="failed", wall=10.0, order=("split", "work", "merge"),
        instances=(
            _inst("split", 0, 0.0, 1.0, samples=((0.2, 5 * MiB), (0.6, 20 * MiB))),
            _inst("work", 0, 1.0, 9.0),
            _inst("work", 1, 1.0, 7.0),
            _inst("work", 2, 1.0, 4.0, status="failed"),
        ),
        memory=(MemoryRun("buf", "buf-0", "shm", 64 * MiB, 0.5, 9.5, "scad-buf-0"),),
        edges=(("split", "work"), ("work", "merge")),
        corunning=(("buf", "split"), ("buf", "work")),
        failure=FAILURE,
    )


def empty() -> RunReport:
    return RunReport(program="nothing", status="ok", wall=0.0, order=(), instances=(), memory=())


def svgs(page: str) -> dict[str, ET.Element]:
    found = re.findall(r'<svg id="(\w+)".*?</svg>', page, re.DOTALL)
    blocks = re.findall(r'<svg id="\w+".*?</svg>', page, re.DOTALL)
    return {name: ET.fromstring(block) for name, block in zip(found, blocks, strict=True)}


def classes(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter() if cls in e.get("class", "").split()]


def test_fan_out_structure() -> None:
    page = render_html(fan_out())
    parsed = svgs(page)
    assert set(parsed) == {"dag", "timeline", "memory"}
    bars = classes(parsed["timeline"], "bar")
    assert len(bars) == 5  # 4 compute instances + 1 memory element instance
    assert sorted(b.get("class", "") for b in bars).count("bar bar-failed") == 1
    assert len(classes(parsed["timeline"], "bar-memory")) == 1
    assert all(b.find("{http://www.w3.org/2000/svg}title") is not None for b in bars)
    assert "work[2]" in page and "<h1>fan_out" in page


def test_dag_layers_and_links() -> None:
    dag = svgs(render_html(fan_out()))["dag"]
    ns = "{http://www.w3.org/2000/svg}"
    nodes = {g.findtext(f"{ns}text"): float(g.find(f"{ns}rect").get("x")) for g in dag.iter(f"{ns}g")
             if g.find(f"{ns}rect") is not None}
    assert nodes["split"] < nodes["work ×3"] < nodes["merge"]  # one layer per dependency depth
    assert len(classes(dag, "dep")) == 2 and len(classes(dag, "corun")) == 2
    assert len(classes(dag, "mem-node")) == 1
    assert len(classes(dag, "node-failed")) == 1 and len(classes(dag, "node-none")) == 1  # merge never ran


def test_failure_text_is_escaped() -> None:
    page = render_html(fan_out())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page


def test_no_network_references() -> None:
    page = render_html(fan_out())
    assert set(re.findall(r"https?://[^\s\"'<>]*", page)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(script|link|img|iframe)\b", page) and "@import" not in page and "url(http" not in page


def test_deterministic() -> None:
    assert render_html(fan_out()) == render_html(fan_out())
    assert render_html(empty()) == render_html(empty())


def test_empty_report() -> None:
    page = render_html(empty())
    parsed = svgs(page)
    assert set(parsed) == {"dag", "timeline", "memory"}
    assert classes(parsed["timeline"], "bar") == []
    assert "no instances" in page


def test_zero_duration_run() -> None:
    report = RunReport(program="instant", status="ok", wall=0.0, order=("a",), instances=(_inst("a", 0, 0.0, 0.0),),
                       memory=(MemoryRun("m", "m-0", "tcp", 0, 0.0, 0.0),), corunning=(("m", "a"),))
    bars = classes(svgs(render_html(report))["timeline"], "bar")
    assert len(bars) == 2 and all(float(b.get("width", "0")) >= 1 for b in bars)


def test_interrupted_and_unknown_status() -> None:
    report = RunReport(program="p", status="interrupted", wall=2.0, order=("a",),
                       instances=(_inst("a", 0, 0.0, 2.0, status="crashed"), _inst("a", 1, 0.0, 1.0, status="odd")),
                       memory=())
    page = render_html(report)
    assert 'class="status status-interrupted"' in page
    assert len(classes(svgs(page)["timeline"], "bar-crashed")) == 2  # unknown statuses draw as crashes


def test_hundreds_of_instances() -> None:
    instances = tuple(_inst("w", k, k * 0.01, k * 0.01 + 1.0) for k in range(600))
    report = RunReport(program="many", status="ok", wall=7.0, order=("w",), instances=instances, memory=())
    started = time.perf_counter()
    page = render_html(report)
    assert time.perf_counter() - started < 5
    timeline = svgs(page)["timeline"]
    assert len(classes(timeline, "bar")) == 600
    assert float(timeline.get("height", "0")) < 600 * 20  # rows stay small; the box scrolls
    assert '<div class="scroll">\n<svg id="timeline"' in page


def test_memory_steps() -> None:
    steps = dict(_memory_steps(fan_out()))
    # at 0.6 s: split's second sample (20 MiB) and buf (64 MiB); at 1.0 s: buf + 3 × work's peak RSS
    assert steps[0.6] == 84 * MiB
    assert steps[1.0] == 94 * MiB
    assert steps[9.5] == 0


# -- headless Chromium ------------------------------------------------------------------------------

MAGENTA = (255, 0, 255)


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def run_browser(binary: str, tmp: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run Chromium in its own process group, and kill the group however it ends: no browser outlives a test."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--window-size=1280,1600", "--hide-scrollbars", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish in {timeout} s")
    finally:
        with contextlib.suppress(ProcessLookupError):  # already gone, as it should be
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB or RGBA non-interlaced PNG (what Chromium writes) into a height × width × 3 array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), np.uint8)
    prev = np.zeros(width * bpp, np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel, which numpy does in one go
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:
            row = (line + prev) % 256
        else:  # Average and Paeth depend on the pixel just decoded: byte by byte
            row = np.zeros_like(line)
            up = prev.tolist()
            cur = line.tolist()
            for i in range(len(cur)):
                a = cur[i - bpp] if i >= bpp else 0
                c = up[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    cur[i] = (cur[i] + (a + b) // 2) % 256
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) % 256
            row = np.array(cur, np.int32)
        out[y] = row
        prev = row
    return out.reshape(height, width, bpp)[:, :, :3]


@pytest.mark.skipif(chromium() is None, reason="no chromium binary (CI installs Debian's chromium)")
def test_chromium_renders_timeline(tmp_path: Path) -> None:
    binary = chromium()
    assert binary is not None
    # Paint the bars a colour nothing else on the page uses, so their pixels can be counted
    page = render_html(fan_out()).replace("</head>", "<style>#timeline .bar{fill:#ff00ff}</style></head>", 1)
    html_file = tmp_path / "report.html"
    html_file.write_text(page, encoding="utf-8")
    url = html_file.as_uri()

    dom = run_browser(binary, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<svg id="timeline"', dom.stdout)
    assert len(re.findall(r'class="bar bar-', dom.stdout)) == 5

    shot = tmp_path / "shot.png"
    result = run_browser(binary, tmp_path, f"--screenshot={shot}", url)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = read_png(shot)
    assert pixels.shape[1] == 1280
    magenta = np.all(np.abs(pixels.astype(np.int32) - MAGENTA) <= 8, axis=2)
    # bars last 1 + 8 + 6 + 3 + 9 s of a 10 s axis 960 px wide, and are 12 px high: about 31 000 px
    assert magenta.sum() > 20000
    # one horizontal band of magenta per bar, stacked in timeline rows
    rows = np.flatnonzero(magenta.any(axis=1))
    bands = 1 + int(np.count_nonzero(np.diff(rows) > 1))
    assert bands == 5
    # the widest bar (buf, 0.5–9.5 s) spans 90 % of the axis: 864 px
    assert magenta.sum(axis=1).max() >= 850
