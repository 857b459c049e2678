"""A grouped bar chart as a self-contained SVG (no plotting library): one panel per metric,
one bar per implementation (mean over rounds, with each round as a dot), the value on the bar."""

import math
from xml.sax.saxutils import escape

COLORS = ["#4C72B0", "#DD8452", "#8C8C8C"]
PANEL_W, PANEL_H, COLS = 340, 260, 3
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 46, 46


def _nice_max(v):
    """The top of the axis: four steps of a round number (1, 1.5, 2, 2.5, 3, 4 or 5 times a power of ten)."""
    if v <= 0:
        return 1.0
    raw = v / 4
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 10):
        if m * exp >= raw:
            return 4 * m * exp
    return 40 * exp


def _fmt(v):
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def render(title, subtitle, series_names, panels, path):
    """panels: [{"title", "unit", "groups": [(label, [(value or None, [round values])...])]}],
    one (value, rounds) per series in series_names order ("ref" groups may have fewer)."""
    rows = math.ceil(len(panels) / COLS)
    width, height = COLS * PANEL_W, rows * PANEL_H + 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="12" y="22" font-size="16" font-weight="bold">{escape(title)}</text>',
           f'<text x="12" y="40" font-size="11" fill="#444">{escape(subtitle)}</text>']
    lx = 12
    for i, name in enumerate(series_names):
        out.append(f'<rect x="{lx}" y="50" width="12" height="12" fill="{COLORS[i % len(COLORS)]}"/>')
        out.append(f'<text x="{lx + 16}" y="60.5">{escape(name)}</text>')
        lx += 24 + 7.2 * len(name)
    for n, panel in enumerate(panels):
        ox, oy = (n % COLS) * PANEL_W, 70 + (n // COLS) * PANEL_H
        out.append(_panel(panel, ox, oy))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def _panel(panel, ox, oy):
    plot_w, plot_h = PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM
    x0, y0 = ox + LEFT, oy + TOP + plot_h
    values = [v for _, bars in panel["groups"] for v, rounds in bars for v in [v, *rounds] if v is not None]
    vmax = _nice_max(max(values) * 1.12 if values else 1.0)
    s = [f'<text x="{ox + PANEL_W / 2}" y="{oy + 18}" text-anchor="middle" font-size="13" '
         f'font-weight="bold">{escape(panel["title"])}</text>',
         f'<text x="{ox + 12}" y="{oy + 34}" font-size="11" fill="#444">{escape(panel["unit"])}</text>']
    for k in range(5):
        v = vmax * k / 4
        y = y0 - plot_h * k / 4
        s.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + plot_w}" y2="{y}" stroke="#e3e3e3"/>')
        s.append(f'<text x="{x0 - 5}" y="{y + 4}" text-anchor="end" font-size="10" fill="#444">{_fmt(v)}</text>')
    s.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + plot_w}" y2="{y0}" stroke="#333"/>')
    groups = panel["groups"]
    gw = plot_w / len(groups)
    for g, (label, bars) in enumerate(groups):
        gx = x0 + g * gw
        bw = min(42, (gw - 16) / max(1, len(bars)))
        bx0 = gx + (gw - bw * len(bars)) / 2
        for b, (v, rounds) in enumerate(bars):
            color = COLORS[2] if label.startswith("ref:") else COLORS[b % len(COLORS)]
            bx = bx0 + b * bw
            if v is None:
                s.append(f'<text x="{bx + bw / 2}" y="{y0 - 4}" text-anchor="middle" font-size="10">n/a</text>')
                continue
            h = plot_h * v / vmax
            s.append(f'<rect x="{bx + 2}" y="{y0 - h}" width="{bw - 4}" height="{h}" fill="{color}"/>')
            # The mean's label sits above the bar and above every round's dot.
            top = plot_h * max([v] + [r for r in rounds if r is not None]) / vmax
            s.append(f'<text x="{bx + bw / 2}" y="{y0 - top - 5}" text-anchor="middle" font-size="10">{_fmt(v)}</text>')
            for r in rounds:
                if r is not None:
                    s.append(f'<circle cx="{bx + bw / 2}" cy="{y0 - plot_h * r / vmax}" r="2.2" fill="#222"/>')
        text = label[4:] if label.startswith("ref:") else label
        s.append(f'<text x="{gx + gw / 2}" y="{y0 + 16}" text-anchor="middle" font-size="11">{escape(text)}</text>')
    if panel.get("note"):
        s.append(f'<text x="{ox + PANEL_W / 2}" y="{y0 + 34}" text-anchor="middle" font-size="10" '
                 f'fill="#444">{escape(panel["note"])}</text>')
    return "\n".join(s)
