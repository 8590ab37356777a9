"""Bilinear upsampling of a crop exactly as the whole image would be upsampled."""
import torch


def upsample_axis_of_crop(x, dim, fine_origin, fine_len, full_fine, full_coarse, coarse_origin):
    """Linear interpolation along ``dim`` of a crop, with the *whole image's* coordinate mapping.

    ``F.interpolate(size=..., mode='bilinear', align_corners=False)`` maps output pixel D to
    ``(D + 0.5) * in / out - 0.5`` with in/out the whole image's sizes (not exactly 1/2 when a side
    is not a multiple of 4), so a crop has to use that global mapping, then index its own samples.

    Args:
        x: tensor whose axis ``dim`` holds coarse samples ``coarse_origin ..`` of a line of ``full_coarse``.
        fine_origin, fine_len: the fine samples wanted, of a line of ``full_fine``.

    Returns:
        ``x`` with axis ``dim`` of length ``fine_len`` (indices outside the crop are clamped to its border).
    """
    scale = torch.tensor(full_coarse, dtype=torch.float32) / torch.tensor(full_fine, dtype=torch.float32)
    dst = torch.arange(fine_origin, fine_origin + fine_len, dtype=torch.float32)
    src = (scale * (dst + 0.5) - 0.5).clamp_min(0)
    i0 = src.floor().long()
    lam = (src - i0.to(src.dtype)).clamp(0, 1)
    i1 = torch.where(i0 < full_coarse - 1, i0 + 1, i0)
    last = x.shape[dim] - 1
    i0 = (i0 - coarse_origin).clamp(0, last).to(x.device)
    i1 = (i1 - coarse_origin).clamp(0, last).to(x.device)
    shape = [1] * x.dim()
    shape[dim] = fine_len
    lam = lam.to(device=x.device, dtype=x.dtype).view(shape)
    return x.index_select(dim, i0) * (1 - lam) + x.index_select(dim, i1) * lam


def upsample_crop_bilinear(x, origin, size, full_fine, full_coarse):
    """Bilinear x2 upsampling of the coarse crop ``x`` (B, C, h, w) of an image level of ``full_coarse``
    to the fine crop at ``origin`` (even (y, x)) of ``size`` (H, W) in a level of ``full_fine``."""
    (oy, ox), (fh, fw), (ch, cw) = origin, full_fine, full_coarse
    x = upsample_axis_of_crop(x, 2, oy, size[0], fh, ch, oy // 2)
    return upsample_axis_of_crop(x, 3, ox, size[1], fw, cw, ox // 2)
