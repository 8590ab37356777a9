"""LPIPS (Zhang et al., CVPR 2018) as a BasicSR metric, computed fully offline.

``calculate_lpips`` is registered in BasicSR's ``METRIC_REGISTRY``. LOWER is better, so option files must say
``better: lower`` (BasicSR assumes ``higher`` otherwise and would keep the worst checkpoint as "best")::

    val:
      metrics:
        lpips:
          type: calculate_lpips
          crop_border: 4
          net: alex          # alex (default) | vgg | squeeze
          better: lower

The backbone's ImageNet weights are never downloaded at run time: see :mod:`dml_basicsr.metrics.lpips_weights`
for where they are looked up and for the one-time install command
``python -m dml_basicsr.metrics.lpips_weights --install``.
"""
import warnings

import numpy as np
import torch
from basicsr.metrics.metric_util import reorder_image, to_y_channel
from basicsr.utils.registry import METRIC_REGISTRY

# (net, device string) -> lpips.LPIPS in eval mode with a local ImageNet backbone
_MODELS = {}


def default_device():
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def build_lpips_model(net='alex'):
    """A CPU ``lpips.LPIPS`` whose backbone holds local ImageNet weights (never random, never downloaded).

    Raises:
        LPIPSWeightsNotFoundError: no local backbone weights (the message says how to install them).
    """
    import lpips

    from .lpips_weights import load_backbone_into, load_backbone_state_dict, normalize_net

    net = normalize_net(net)
    load_backbone_state_dict(net)  # fail with the clear message before building anything
    with warnings.catch_warnings():  # torchvision's 'pretrained' deprecation warnings from lpips
        warnings.simplefilter('ignore', UserWarning)
        # pnet_rand=True: the backbone is built without downloading; its random init is overwritten right below.
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    model.backbone_source = load_backbone_into(model, net)
    model.eval()
    model.requires_grad_(False)
    return model


def get_lpips_model(net='alex', device=None):
    """The cached LPIPS model for ``(net, device)``; device defaults to CUDA when available, else CPU."""
    from .lpips_weights import normalize_net

    net = normalize_net(net)
    device = torch.device(device) if device is not None else default_device()
    key = (net, str(device))
    if key not in _MODELS:
        _MODELS[key] = build_lpips_model(net).to(device)
    return _MODELS[key]


def _to_lpips_tensor(img):
    """HWC BGR (or 1-channel) image in [0, 255] -> 1x3xHxW RGB float32 tensor in [-1, 1]."""
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 3:
        img = img[..., ::-1]  # BGR -> RGB
    else:
        raise ValueError(f'LPIPS needs 1- or 3-channel images, got {img.shape[2]} channels')
    img = np.ascontiguousarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0)


@METRIC_REGISTRY.register()
def calculate_lpips(img, img2, crop_border=0, input_order='HWC', net='alex', test_y_channel=False, **kwargs):
    """Calculate LPIPS (Learned Perceptual Image Patch Similarity). Lower is better: use ``better: lower``.

    Ref: https://github.com/richzhang/PerceptualSimilarity (lpips v0.1 linear layers, ImageNet backbone).

    Args:
        img (ndarray): Image with range [0, 255] (uint8 from ``tensor2img``), BGR, HWC/CHW or HxW.
        img2 (ndarray): Image with range [0, 255], same shape.
        crop_border (int): Pixels cropped at each edge before the calculation. Default: 0.
        input_order (str): 'HWC' or 'CHW'. Default: 'HWC'.
        net (str): Backbone: 'alex' (default, the usual SR choice), 'vgg' or 'squeeze'.
        test_y_channel (bool): Compare the Y channel of YCbCr (replicated to 3 channels). Default: False.
        **kwargs: Ignored (BasicSR passes e.g. ``better``).

    Gray images (2-D or 1 channel) are replicated to 3 channels; colour images go BGR -> RGB; both are scaled
    to [-1, 1] as lpips expects. The model is cached per (net, device) and runs on CUDA when available.

    Returns:
        float: LPIPS distance (0 for identical images).
    """
    assert img.shape == img2.shape, (f'Image shapes are different: {img.shape}, {img2.shape}.')
    if input_order not in ['HWC', 'CHW']:
        raise ValueError(f'Wrong input_order {input_order}. Supported input_orders are "HWC" and "CHW"')
    img = reorder_image(img, input_order=input_order)
    img2 = reorder_image(img2, input_order=input_order)

    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]

    if test_y_channel:
        img = to_y_channel(img)
        img2 = to_y_channel(img2)
        if img.ndim == 2:
            img, img2 = img[..., None], img2[..., None]

    model = get_lpips_model(net)
    device = next(model.parameters()).device
    with torch.inference_mode():
        value = model(_to_lpips_tensor(img).to(device), _to_lpips_tensor(img2).to(device))
    return float(value.item())
