"""The loss curves as an SVG drawn on the server: train and eval loss per step, this version solid and the previous one
dashed, on shared axes. Only numbers are computed here; the template writes the SVG (and a table of the same points
for screen readers), escaping every label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
MAX_POINTS = 200  # a polyline stays small however many steps were logged
TICKS = 5


@dataclass(frozen=True)
class Series:
    label: str  # "train loss (this version)"
    kind: str  # "train" or "eval": the colour
    dashed: bool  # the previous version
    points: str  # the polyline's "x,y x,y ..."
    table: tuple[tuple[int, float], ...]  # (step, value), as drawn
    dots: tuple[tuple[float, float], ...] = ()  # a series of one or two points is drawn as dots too (a line of one is invisible)


@dataclass(frozen=True)
class Tick:
    at: float  # pixel
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def _thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = (len(points) - 1) / (limit - 1)
    return [points[round(i * stride)] for i in range(limit)]


def _finite(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in points if isinstance(v, int | float) and math.isfinite(v)]


def _label(value: float) -> str:
    return f"{value:.3g}"


def loss_chart(this: dict[str, list[tuple[int, float]]], previous: dict[str, list[tuple[int, float]]] | None = None) -> Chart | None:
    """The chart of ``this`` version's curves (``train_loss``, ``eval_loss``) and the ``previous`` one's, or None when
    neither has a finite point. Non-finite values (a diverged run's NaN) are left out of the line, not drawn as 0."""
    named: list[tuple[str, str, bool, list[tuple[int, float]]]] = []
    for dashed, curves in ((False, this), (True, previous or {})):
        for key in ("train_loss", "eval_loss"):
            points = _thin(_finite(curves.get(key) or []))
            if points:
                kind = key.split("_")[0]
                who = "previous version" if dashed else "this version"
                named.append((f"{kind} loss ({who})", kind, dashed, points))
    if not named:
        return None
    steps = [s for *_, pts in named for s, _ in pts]
    values = [v for *_, pts in named for _, v in pts]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    if x1 == x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.05 or 0.1
    y0, y1 = y0 - pad, y1 + pad
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def x(step: float) -> float:
        return LEFT + (step - x0) / (x1 - x0) * (right - LEFT)

    def y(value: float) -> float:
        return bottom - (value - y0) / (y1 - y0) * (bottom - TOP)

    series = tuple(
        Series(
            label,
            kind,
            dashed,
            " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in pts),
            tuple(pts),
            tuple((round(x(s), 1), round(y(v), 1)) for s, v in pts) if len(pts) <= 2 else (),
        )
        for label, kind, dashed, pts in named
    )
    x_ticks = tuple(Tick(x(x0 + (x1 - x0) * i / (TICKS - 1)), str(round(x0 + (x1 - x0) * i / (TICKS - 1)))) for i in range(TICKS))
    y_ticks = tuple(Tick(y(y0 + (y1 - y0) * i / (TICKS - 1)), _label(y0 + (y1 - y0) * i / (TICKS - 1))) for i in range(TICKS))
    return Chart(WIDTH, HEIGHT, series, x_ticks, y_ticks)
