"""An SR network over an LR image of any size, in overlapping tiles, stitched without seams."""
import torch


def tile_starts(size, tile):
    """The starts of tiles of side ``tile`` covering ``[0, size)``."""
    return list(range(0, size, tile))


def upscale_tiled(net, lr, scale, tile=256, tile_pad=32):
    """``net(lr)`` computed tile by tile.

    Args:
        net: callable (B, C, h, w) -> (B, C', s*h, s*w).
        lr: (B, C, H, W) tensor.
        scale: the network's integer scale s.
        tile: LR tile side; 0/None or a tile at least the image: the whole image at once.
        tile_pad: LR context on each side of a tile, cut off after the network.

    Returns:
        (B, C', s*H, s*W) tensor on ``lr``'s device: each tile's core of ``net`` on the tile padded by ``tile_pad``
        (clipped to the image). Equal to ``net(lr)`` up to float rounding wherever ``tile_pad`` covers the network's
        receptive radius and the network has no global operation (MSRResNet, VDSR; RCAN's channel attention pools
        the whole input, so its tiles differ slightly).
    """
    b, _, h, w = lr.shape
    if not tile or (h <= tile and w <= tile):
        return net(lr)
    out = None
    for y0 in tile_starts(h, tile):
        y1, py0, py1 = min(y0 + tile, h), max(0, y0 - tile_pad), min(h, y0 + tile + tile_pad)
        for x0 in tile_starts(w, tile):
            x1, px0, px1 = min(x0 + tile, w), max(0, x0 - tile_pad), min(w, x0 + tile + tile_pad)
            sr = net(lr[:, :, py0:py1, px0:px1])
            if out is None:
                out = torch.empty(b, sr.shape[1], h * scale, w * scale, dtype=sr.dtype, device=lr.device)
            top, left = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                sr[:, :, top:top + (y1 - y0) * scale, left:left + (x1 - x0) * scale].to(lr.device)
    return out
