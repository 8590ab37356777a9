"""HR -> LR with a trained DSGAN (``DSGANModel``'s ``net_g``): the degradation source ``dsgan`` of option files."""
import torch
import torch.nn as nn

from dml_basicsr.archs import DSGANDegradation
from dml_basicsr.utils.checkpoint import CheckpointError, load_state_dict
from dml_basicsr.utils.options import check_known_keys, is_int

SECTION_KEYS = frozenset({'checkpoint', 'scale', 'param_key'})


def dsgan_from_state_dict(state, scale, path):
    """The :class:`DSGANDegradation` whose weights are ``state`` (its widths read off the tensors)."""
    try:
        first = state['generator.conv_first.0.weight']
        blocks = {key.split('.')[2] for key in state if key.startswith('generator.body.')}
        net = DSGANDegradation(num_in_ch=first.shape[1], scale=scale, num_feat=first.shape[0], num_block=len(blocks))
        net.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as e:
        message = (str(e).strip().splitlines() or [''])[0]
        raise CheckpointError(f'{path}: not the net_g of a DSGANModel training of scale {scale} ({message})') from None
    return net


class DSGANSynthesis(nn.Module):
    """(B, C, H, W) HR in [0, 1] -> (B, C, ceil(H/s), ceil(W/s)) LR in [0, 1]: the MATLAB bicubic /s, then the
    trained generator (its own noise is part of what it learned: no AWGN is added). No gradient; on ``hr``'s device.

    Build it from the option section ``degradation: {dsgan: {checkpoint: PTH, scale: 4}}`` (:meth:`from_options`)
    or from a checkpoint (:meth:`from_checkpoint`). ``basicsr synthesize --dsgan PTH --scale 4`` uses it through
    the interface of :class:`~dml_basicsr.degradation.DMLDegradation` that folder synthesis calls
    (:meth:`degrade_clean`, :meth:`add_noise`, ``noise``).
    """
    noise = 'none (the generator\'s own)'

    def __init__(self, net):
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    @property
    def scale(self):
        return self.net.scale

    @classmethod
    def from_options(cls, section):
        """From the ``dsgan`` section: ``checkpoint`` (net_g_*.pth of a DSGANModel run), ``scale``, ``param_key``."""
        if not isinstance(section, dict):
            raise ValueError(f'degradation.dsgan must be a section {{checkpoint: PTH, scale: 4}}, got {section!r}')
        check_known_keys(section, SECTION_KEYS, 'degradation.dsgan', 'DSGANSynthesis')
        scale = section.get('scale')
        if not is_int(scale) or scale < 1:
            raise ValueError(f'degradation.dsgan.scale must be the integer scale of the trained DSGAN, got {scale!r}')
        if not section.get('checkpoint'):
            raise ValueError('degradation.dsgan.checkpoint is missing (the net_g_*.pth of a DSGANModel run)')
        return cls.from_checkpoint(str(section['checkpoint']), scale, section.get('param_key', 'params'))

    @classmethod
    def from_checkpoint(cls, path, scale, param_key='params'):
        """From ``path``, the net_g_*.pth of a DSGANModel training of ``scale``; CheckpointError naming it."""
        return cls(dsgan_from_state_dict(load_state_dict(path, param_key), scale, path))

    @torch.no_grad()
    def forward(self, hr):
        net = self.net.to(hr.device)
        return net(hr.float()).clamp(0, 1).to(hr.dtype)

    def degrade_clean(self, hr):
        """The LR of ``hr`` (:meth:`forward`: DSGAN's noise is in its output, nothing is added after)."""
        return self(hr)

    def add_noise(self, lr, generator=None):
        """``lr`` clamped to [0, 1]: DSGAN adds no noise of its own after the generator (``generator`` unused)."""
        return lr.clamp(0, 1)
