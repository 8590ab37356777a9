"""Noise-level pictures (matplotlib, drawn off-screen): residual std against intensity, per channel."""
import math
import textwrap

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Colours of the series, in order.
PALETTE = ('#282828', '#145ac8', '#d21e1e', '#289628', '#a03ca0')
CHANNEL_NAMES = {'y': ('Y',), 'rgb': ('R', 'G', 'B')}
DPI = 100


def line_plot_panels(panels, title, y_max=None, size=(420, 320)):
    """A picture (H, W, 3 uint8 BGR) of one panel per entry of ``panels``, side by side, under ``title`` (wrapped to
    the picture's width, never cut off).

    Each panel is ``(heading, series)``; each series ``(label, xs, ys, style)`` with ``style`` 'points' or 'line'
    (NaN points are skipped), x on 0-255, y on ``[0, y_max]`` (default: the largest y, rounded up)."""
    values = [y for _, series in panels for _, _, ys, _ in series for y in ys if not math.isnan(y)]
    y_max = y_max or max(math.ceil(max(values + [1.]) * 1.15), 1)
    width = size[0] * len(panels)
    lines = textwrap.wrap(f'{title}   (y: residual std, 0-255)', max(20, width // 7))
    fig = Figure(figsize=(width / DPI, (size[1] + 16 * len(lines)) / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    for ax, (heading, series) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for k, (label, xs, ys, style) in enumerate(series):
            xs, ys = np.asarray(xs, float), np.asarray(ys, float)
            keep = ~(np.isnan(xs) | np.isnan(ys))
            ax.plot(xs[keep], ys[keep], '-' if style == 'line' else 'o', color=PALETTE[k % len(PALETTE)],
                    lw=2, ms=3, label=label)
        ax.set(xlim=(0, 255), ylim=(0, y_max))
        ax.set_xlabel('clean LR intensity (0-255)', fontsize=8)
        ax.set_title(heading, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc='upper left')
    fig.suptitle('\n'.join(lines), fontsize=9)
    fig.tight_layout()
    canvas.draw()
    return cv2.cvtColor(np.asarray(canvas.buffer_rgba()), cv2.COLOR_RGBA2BGR)


def fitted_std_curve(a, b, xs=None):
    """``(xs, std)`` on the 0-255 scale of the fitted ``var = a * I + b`` ([0, 1] scale)."""
    xs = np.linspace(0, 255, 52) if xs is None else np.asarray(xs)
    return xs.tolist(), (np.sqrt(np.maximum(a * xs / 255. + b, 0)) * 255.).tolist()


def noise_level_picture(bins, entry, color, title, awgn_sigma=5.0):
    """``basicsr fit-noise``'s picture: per channel the measured binned std (points), the fitted curve and the AWGN
    line. ``bins``: a fit's ``bins`` (intensity, std per channel on [0, 1]); ``entry``: its a and b."""
    panels = []
    for ch, name in enumerate(CHANNEL_NAMES[color]):
        xs = [math.nan if x is None else x * 255. for x in bins['intensity'][ch]]
        ys = [math.nan if s is None else s * 255. for s in bins['std'][ch]]
        series = [('real residual (flat, binned MAD)', xs, ys, 'points'),
                  ('fitted a*I+b', *fitted_std_curve(entry['a'][ch], entry['b'][ch]), 'line'),
                  (f'AWGN sigma {awgn_sigma:g}', [0, 255], [awgn_sigma] * 2, 'line')]
        panels.append((f'channel {name}', series))
    return line_plot_panels(panels, title)
