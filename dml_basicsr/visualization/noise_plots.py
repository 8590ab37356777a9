"""Noise-level pictures drawn with OpenCV (no plotting library needed): residual std against intensity, per channel."""
import math

import cv2
import numpy as np

# BGR colours of the series, in order.
PALETTE = ((40, 40, 40), (200, 90, 20), (30, 30, 210), (40, 150, 40), (160, 60, 160))
CHANNEL_NAMES = {'y': ('Y',), 'rgb': ('R', 'G', 'B')}


def _ticks(high, count=5):
    step = max(high / count, 1e-9)
    magnitude = 10 ** math.floor(math.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    return [i * step for i in range(int(high / step) + 1)]


def line_plot_panels(panels, title, y_max=None, size=(420, 320)):
    """A picture (H, W, 3 uint8 BGR) of one panel per entry of ``panels``, side by side.

    Each panel is ``(heading, series)``; each series ``(label, xs, ys, style)`` with ``style`` 'points' or 'line'
    (NaN points are skipped), x on 0-255, y on ``[0, y_max]`` (default: the largest y, rounded up)."""
    w, h = size
    left, right, top, bottom = 48, 12, 28, 36
    values = [y for _, series in panels for _, _, ys, _ in series for y in ys if not math.isnan(y)]
    y_max = y_max or max(math.ceil(max(values + [1.]) * 1.15), 1)
    pictures = []
    for heading, series in panels:
        img = np.full((h, w, 3), 255, np.uint8)
        x0, x1, y0, y1 = left, w - right, h - bottom, top
        px = lambda x: int(round(x0 + (x1 - x0) * x / 255.))  # noqa: E731
        py = lambda y: int(round(y0 + (y1 - y0) * min(y, y_max) / y_max))  # noqa: E731
        for t in _ticks(y_max):
            cv2.line(img, (x0, py(t)), (x1, py(t)), (230, 230, 230), 1)
            cv2.putText(img, f'{t:g}', (4, py(t) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (60, 60, 60), 1, cv2.LINE_AA)
        for t in range(0, 256, 50):
            cv2.line(img, (px(t), y0), (px(t), y0 + 4), (60, 60, 60), 1)
            cv2.putText(img, str(t), (px(t) - 8, y0 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (60, 60, 60), 1,
                        cv2.LINE_AA)
        cv2.rectangle(img, (x0, y1), (x1, y0), (60, 60, 60), 1)
        cv2.putText(img, heading, (x0, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, 'clean LR intensity (0-255)', (x0 + 90, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (60, 60, 60), 1, cv2.LINE_AA)
        for k, (label, xs, ys, style) in enumerate(series):
            colour = PALETTE[k % len(PALETTE)]
            points = [(px(x), py(y)) for x, y in zip(xs, ys) if not (math.isnan(x) or math.isnan(y))]
            if style == 'line' and len(points) > 1:
                cv2.polylines(img, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
            else:
                for p in points:
                    cv2.circle(img, p, 3, colour, -1, cv2.LINE_AA)
            cv2.putText(img, label, (x0 + 6, y1 + 14 + 13 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1,
                        cv2.LINE_AA)
        pictures.append(img)
    body = np.concatenate(pictures, axis=1)
    header = np.full((26, body.shape[1], 3), 255, np.uint8)
    cv2.putText(header, f'{title}   (y: residual std, 0-255)', (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([header, body], axis=0)


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


def write_png(path, picture):
    """Write a BGR uint8 picture; OSError if OpenCV cannot."""
    ok, encoded = cv2.imencode('.png', picture)
    if not ok:
        raise OSError(f'{path}: cannot encode the picture')
    with open(path, 'wb') as f:
        f.write(encoded.tobytes())
