"""Pictures of kernels and weight maps as uint8 arrays (write them with cv2.imwrite)."""
import numpy as np


def _as_numpy(x):
    return x.detach().float().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x, dtype=np.float32)


def _tile_grid(tiles, cols, gap=2, fill=255):
    """Arrange equally sized (h, w) uint8 tiles row-major in ``cols`` columns, ``gap`` pixels apart."""
    n, h, w = tiles.shape
    rows = -(-n // cols)
    canvas = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap), fill, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        canvas[y:y + h, x:x + w] = tile
    return canvas


def kernel_tiles(kernels, zoom=8, shared_scale=False):
    """(N, K, K) kernels -> (N, K*zoom, K*zoom) uint8 tiles, each min-max scaled to [0, 255].

    With ``shared_scale`` every tile uses one min-max over all kernels (to compare magnitudes).
    """
    k = _as_numpy(kernels)
    axes = None if shared_scale else (1, 2)
    lo = k.min(axis=axes, keepdims=True)
    hi = k.max(axis=axes, keepdims=True)
    scaled = (k - lo) / np.maximum(hi - lo, 1e-12)
    tiles = np.rint(scaled * 255).astype(np.uint8)
    return np.kron(tiles, np.ones((1, zoom, zoom), np.uint8))


def kernel_grid(kernels, cols=None, zoom=8):
    """Basis kernels (M, K, K) as one grid image (paper Fig. 2)."""
    n = len(kernels)
    return _tile_grid(kernel_tiles(kernels, zoom), cols or min(n, 8))


def weight_map_grid(weights, cols=None, stretch=False):
    """Weight maps (M, H, W) in [0, 1] as one grid image (paper Fig. 3).

    0 is black and 1 white; with ``stretch`` each map is min-max scaled on its own instead
    (to see the spatial variation of maps that vary little).
    """
    w = _as_numpy(weights)
    if stretch:
        lo, hi = w.min(axis=(1, 2), keepdims=True), w.max(axis=(1, 2), keepdims=True)
        w = (w - lo) / np.maximum(hi - lo, 1e-12)
    tiles = np.rint(np.clip(w, 0, 1) * 255).astype(np.uint8)
    return _tile_grid(tiles, cols or min(len(w), 4))


LABEL_WIDTH = 84  # pixels of the label column of kernel_comparison


def kernel_comparison(true_kernels, learned_kernels, zoom=6, labels=('true', 'learned')):
    """Two rows per grid row of points: true kernels above learned ones, each pair on one scale, each row named by
    ``labels`` (upper, lower) in a column on the left.

    Args:
        true_kernels, learned_kernels: (N, K, K) with N = g*g points in row-major grid order.
    """
    import cv2

    t, l_ = _as_numpy(true_kernels), _as_numpy(learned_kernels)
    n = len(t)
    cols = int(round(np.sqrt(n)))
    pairs = [kernel_tiles(np.stack([t[i], l_[i]]), zoom, shared_scale=True) for i in range(n)]
    rows = []
    for r in range(-(-n // cols)):
        chunk = pairs[r * cols:(r + 1) * cols]
        rows.extend([np.stack([p[0] for p in chunk]), np.stack([p[1] for p in chunk])])
    grid = _tile_grid(np.concatenate(rows), cols)
    column = np.full((grid.shape[0], LABEL_WIDTH), 255, np.uint8)
    side, gap = pairs[0].shape[-1], 2
    for row in range(len(rows)):
        y = gap + row * (side + gap) + side // 2 + 4
        cv2.putText(column, labels[row % 2][:12], (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA)
    return np.concatenate([column, grid], axis=1)

