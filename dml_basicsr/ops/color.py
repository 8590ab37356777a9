"""Colour conversion on tensors, BasicSR's (ITU-R BT.601, MATLAB) Y convention."""
import torch

_Y_WEIGHTS = (65.481 / 255., 128.553 / 255., 24.966 / 255.)
_Y_OFFSET = 16. / 255.


def rgb_to_y(img):
    """Luma of an RGB image in [0, 1], as ``basicsr.utils.rgb2ycbcr_pt(img, y_only=True)``.

    Args:
        img: (B, 3, H, W) RGB in [0, 1].

    Returns:
        (B, 1, H, W) Y in [16/255, 235/255].
    """
    if img.dim() != 4 or img.shape[1] != 3:
        raise ValueError(f'rgb_to_y expects (B, 3, H, W), got shape {tuple(img.shape)}')
    w = torch.tensor(_Y_WEIGHTS, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return (img * w).sum(dim=1, keepdim=True) + _Y_OFFSET
