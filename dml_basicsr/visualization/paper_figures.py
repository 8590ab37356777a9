"""The paper's pictures of trained models on one image: weight maps and kernels (Fig. 2-4), SR crops (Fig. 5/6)."""
import cv2
import numpy as np
import torch
from basicsr.utils import tensor2img

from dml_basicsr.data.image_io import convert_color
from dml_basicsr.data.pair_transforms import image_to_tensor
from dml_basicsr.ops import center_pad
from .kernel_pictures import kernel_comparison, kernel_grid, weight_map_grid

CONTEXT = 16  # LR pixels of context around an SR crop, so that its borders match the full image's


class FigureError(ValueError):
    """A model or image cannot be drawn as asked; the message says why."""


def input_channels(net):
    """``net.num_in_ch``, or the input channels of its first convolution."""
    if hasattr(net, 'num_in_ch'):
        return net.num_in_ch
    first = next((m for m in net.modules() if isinstance(m, torch.nn.Conv2d)), None)
    return first.in_channels if first is not None else 3


def image_tensor(img, num_in_ch, device='cpu'):
    """float32 BGR (H, W, 3) -> (1, C, H, W): Y for 1-channel models, RGB for 3-channel ones."""
    return image_to_tensor(convert_color(img, 'y' if num_in_ch == 1 else None))[None].to(device)


def grid_points(height, width, grid, margin):
    """(grid*grid, 2) long tensor of (y, x), row-major, evenly spread inside ``margin`` of the border."""
    ys = np.linspace(margin, height - 1 - margin, grid).round().astype(int)
    xs = np.linspace(margin, width - 1 - margin, grid).round().astype(int)
    return torch.tensor([(y, x) for y in ys for x in xs], dtype=torch.long)


def mark_points(img, points, radius=4):
    """uint8 BGR copy of ``img`` (float BGR in [0, 1]) with a red circle at each (y, x)."""
    canvas = np.ascontiguousarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    for y, x in points.tolist():
        cv2.circle(canvas, (x, y), radius, (0, 0, 255), 2)
    return canvas


def _pad_to(kernels, other):
    return center_pad(kernels, max(kernels.shape[-1], other.shape[-1]))


def degradation_figures(dml, hr_img, kpn=None, grid=4):
    """{file name: uint8 image} of a DML model (and optionally DirectKPN) on one HR image."""
    figures = {}
    with torch.no_grad():
        figures['basis.png'] = kernel_grid(dml.basis_kernels())
        hr = image_tensor(hr_img, dml.num_in_ch)
        weights = dml.predict_weights(hr)[0]
        figures['weights.png'] = weight_map_grid(weights)
        figures['weights_stretched.png'] = weight_map_grid(weights, stretch=True)
        points = grid_points(hr.shape[-2], hr.shape[-1], grid, margin=dml.kernel_size // 2)
        kernels = dml.kernels_at(hr, points)[0]
        if kpn is not None:
            other = kpn.kernels_at(image_tensor(hr_img, kpn.num_in_ch), points)[0]
            figures['kernels.png'] = kernel_comparison(_pad_to(kernels, other), _pad_to(other, kernels),
                                                       labels=('DML', type(kpn).__name__))
        else:
            figures['kernels.png'] = kernel_grid(kernels, cols=grid, zoom=6)
    figures['kernel_points.png'] = mark_points(hr_img, points)
    return figures


def _to_bgr_uint8(chw):
    """(C, H, W) tensor in [0, 1], C = 1 (gray) or 3 (RGB) -> uint8 BGR (H, W, 3) (BasicSR's ``tensor2img``)."""
    img = tensor2img(chw.cpu())
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img


def sr_crop(net, lr_img, crop, device='cpu'):
    """The SR output of ``net`` for one LR crop (y, x, size), computed with context; (C, s*size, s*size)."""
    y, x, size = crop
    h, w = lr_img.shape[:2]
    y0, x0 = max(0, y - CONTEXT), max(0, x - CONTEXT)
    y1, x1 = min(h, y + size + CONTEXT), min(w, x + size + CONTEXT)
    lr = image_tensor(lr_img[y0:y1, x0:x1], input_channels(net), device)
    with torch.no_grad():
        out = net.to(device)(lr)[0]
    s = out.shape[-1] // lr.shape[-1]
    if s < 1 or out.shape[-1] != s * lr.shape[-1] or out.shape[-2] != s * lr.shape[-2]:
        raise FigureError(f'the SR model maps {tuple(lr.shape[-2:])} to {tuple(out.shape[-2:])}: not an integer scale')
    return out[:, (y - y0) * s:(y - y0 + size) * s, (x - x0) * s:(x - x0 + size) * s]


def labelled_row(tiles, labels, gap=4, label_height=22):
    """Equal-size uint8 BGR tiles side by side, each with its label underneath, on white."""
    h, w = tiles[0].shape[:2]
    canvas = np.full((h + label_height, len(tiles) * (w + gap) - gap, 3), 255, np.uint8)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        x = i * (w + gap)
        canvas[:h, x:x + w] = tile
        cv2.putText(canvas, label[:max(1, w // 8)], (x + 2, h + label_height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def sr_crops_figure(models, lr_img, crop, hr_img=None, device='cpu'):
    """Fig. 5/6: the LR crop (enlarged), each model's SR crop and the HR crop, labelled.

    Args:
        models: [(name, net)] of SR models with one scale s.
        crop: (y, x, size) in LR pixels.
    """
    outs = [(name, sr_crop(net, lr_img, crop, device)) for name, net in models]
    sides = {out.shape[-1] for _, out in outs}
    if len(sides) != 1:
        raise FigureError('the SR models do not share one scale: ' +
                          ', '.join(f'{name} gives {out.shape[-1]} px' for name, out in outs))
    side = sides.pop()
    y, x, size = crop
    s = side // size
    tiles = [cv2.resize(np.clip(lr_img[y:y + size, x:x + size] * 255 + 0.5, 0, 255).astype(np.uint8),
                        (side, side), interpolation=cv2.INTER_NEAREST)]
    tiles += [_to_bgr_uint8(out) for _, out in outs]
    labels = ['LR'] + [name for name, _ in outs]
    if hr_img is not None:
        hr = hr_img[y * s:(y + size) * s, x * s:(x + size) * s]
        if hr.shape[:2] != (side, side):
            raise FigureError(f'--hr: the crop x{s} falls outside the HR image of {hr_img.shape[0]}x{hr_img.shape[1]}')
        tiles.append(np.clip(hr * 255 + 0.5, 0, 255).astype(np.uint8))
        labels.append('HR')
    return labelled_row(tiles, labels)


def lr_comparison_figure(synthetic, hr_img, lr_img, crop):
    """The real LR crop beside each synthetic LR of the same HR, all enlarged to the HR crop's size (nearest
    neighbour, so their pixels show), and the HR crop; labelled.

    Args:
        synthetic: [(name, LR)]: uint8 BGR (h, w, 3) LR images that degradations made of ``hr_img``, the size of
            ``lr_img``.
        hr_img, lr_img: uint8 BGR (H, W, 3) and (h, w, 3), the aligned HR and its real LR (H = s h, W = s w).
        crop: (y, x, size) in LR pixels.
    """
    y, x, size = crop
    s = hr_img.shape[0] // lr_img.shape[0]
    if s < 1 or hr_img.shape[:2] != (s * lr_img.shape[0], s * lr_img.shape[1]):
        raise FigureError(f'the HR ({hr_img.shape[0]}x{hr_img.shape[1]}) is not an integer multiple of the LR '
                          f'({lr_img.shape[0]}x{lr_img.shape[1]})')
    for name, lr in synthetic:
        if lr.shape[:2] != lr_img.shape[:2]:
            raise FigureError(f'{name}: LR of {lr.shape[0]}x{lr.shape[1]}, the real LR is '
                              f'{lr_img.shape[0]}x{lr_img.shape[1]}')
    side = s * size
    tiles = [cv2.resize(img[y:y + size, x:x + size], (side, side), interpolation=cv2.INTER_NEAREST)
             for img in [lr_img] + [lr for _, lr in synthetic]]
    tiles.append(hr_img[y * s:y * s + side, x * s:x * s + side])
    return labelled_row(tiles, ['real LR'] + [name for name, _ in synthetic] + ['HR'])
