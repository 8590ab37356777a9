"""Train the config beside this file with mmengine's Runner: DML-synthesised inputs through DMLDataPreprocessor.

    .venv/bin/python examples/mmengine_sr/train.py --work-dir /tmp/dml_mmengine [--iters 200] [--config config.py]
        [--pretrained realsr-x4]

The Runner writes its logs, config copy and checkpoint into --work-dir only. This module first registers the
example's own parts in mmengine's registries: the model (VDSR from dml_basicsr.archs, L1 loss), the dataset of
shipped photographs and a PSNR metric; the DML parts come from ``custom_imports`` in the config.
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from dml_basicsr.archs import VDSR
from dml_basicsr.data.embedded import load_embedded

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'config.py')


@MODELS.register_module()
class DMLExampleSR(BaseModel):
    """VDSR as an mmengine model working in [0, 1] (the preprocessor's mean 0, std 255).

    ``forward(inputs (B, 3, h, w), data_samples (B, 3, s*h, s*w) GT in training)``: ``{'loss': L1}`` in 'loss'
    mode, the SR images on the 0-255 scale in 'predict' mode, the raw output in 'tensor' mode.
    """

    def __init__(self, num_feat=32, num_conv=6, scale=2, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.net = VDSR(num_in_ch=3, num_out_ch=3, num_feat=num_feat, num_conv=num_conv, upscale=scale)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        sr = self.net(inputs)
        if mode == 'loss':
            return {'loss': F.l1_loss(sr, data_samples)}
        if mode == 'predict':
            return list(sr.clamp(0, 1) * 255.)
        return sr


@DATASETS.register_module()
class DMLExamplePhotos(Dataset):
    """Crops of shipped photographs: ``{'inputs': GT (3, H, W) uint8 RGB}``, or, when ``pipeline`` writes an LR
    ``'img'``, ``{'inputs': LR, 'data_samples': GT}``. The pipeline sees ``{'gt': (H, W, 3) uint8, ...}``."""
    metainfo = {'source': 'photographs shipped with scikit-image'}

    def __init__(self, photos, crop_size, length, random_crop=True, pipeline=()):
        self.photos = [np.round(load_embedded(name)[:, :, ::-1] * 255.).astype(np.uint8) for name in photos]
        self.crop_size, self.length, self.random_crop = crop_size, length, random_crop
        self.pipeline = Compose(list(pipeline))

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        image = self.photos[index % len(self.photos)]
        (h, w), size = image.shape[:2], self.crop_size
        top, left = (np.random.randint(h - size + 1), np.random.randint(w - size + 1)) if self.random_crop else (0, 0)
        results = self.pipeline({'gt': image[top:top + size, left:left + size], 'gt_channel_order': 'rgb'})
        chw = [torch.from_numpy(np.ascontiguousarray(results[k].transpose(2, 0, 1))) for k in ('gt', 'img')
               if k in results]
        return {'inputs': chw[0]} if len(chw) == 1 else {'inputs': chw[1], 'data_samples': chw[0]}


@METRICS.register_module()
class DMLExamplePSNR(BaseMetric):
    """PSNR (0-255, RGB) of the predictions and of bicubic upsampling against the validation GT."""
    default_prefix = 'sr'

    def process(self, data_batch, data_samples):
        for sr, lr, gt in zip(data_samples, data_batch['inputs'], data_batch['data_samples']):
            gt = gt.float().cpu()
            bicubic = F.interpolate(lr[None].float().cpu(), size=gt.shape[-2:], mode='bicubic', align_corners=False)
            self.results.append((psnr(sr.cpu(), gt), psnr(bicubic[0].clamp(0, 255), gt)))

    def compute_metrics(self, results):
        sr, bicubic = zip(*results)
        return {'psnr': float(np.mean(sr)), 'psnr_bicubic': float(np.mean(bicubic))}


def psnr(output, target):
    return 10 * math.log10(255. ** 2 / F.mse_loss(output, target).item())


def degradation_sections(node):
    """The DMLDataPreprocessor and DMLDegrade dicts anywhere in a config."""
    if isinstance(node, dict):
        if str(node.get('type', '')).split('.')[-1] in ('DMLDataPreprocessor', 'DMLDegrade'):
            yield node
        for value in node.values():
            yield from degradation_sections(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from degradation_sections(value)


def use_pretrained(cfg, name):
    """Every DML component of ``cfg`` on the shipped model ``name``, the model's scale set to it; SystemExit if a
    crop of the config is not a multiple of that scale."""
    from dml_basicsr import DMLDegradation

    scale = DMLDegradation.pretrained(name).scale  # an unknown name: the error lists the shipped ones
    sections = list(degradation_sections([cfg[key] for key in cfg.keys()]))
    if not sections:
        raise SystemExit(f'--pretrained {name}: the config has no DMLDataPreprocessor or DMLDegrade to set')
    for section in sections:
        section.pop('checkpoint', None)
        section['pretrained'] = name
    cfg.model.scale = scale
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        crop = loader.dataset.get('crop_size')
        if crop is not None and crop % scale:
            raise SystemExit(f'--pretrained {name}: its scale {scale} does not divide crop_size {crop} of the config')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', required=True, help='where the Runner writes (logs, config, checkpoint)')
    parser.add_argument('--iters', type=int, help='training iterations (default: the config\'s)')
    parser.add_argument('--config', default=CONFIG, help='the Runner config (default: config.py beside this file)')
    parser.add_argument('--pretrained', metavar='NAME',
                        help="a shipped DML model in place of the config's degradation (e.g. realsr-x4); the "
                             "network's scale follows it")
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    cfg = Config.fromfile(args.config)
    if args.pretrained:
        use_pretrained(cfg, args.pretrained)
    cfg.work_dir = args.work_dir
    if args.iters:
        cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = cfg.default_hooks.checkpoint.interval = args.iters
        cfg.default_hooks.logger.interval = min(cfg.default_hooks.logger.interval, args.iters)
    return Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    main()
