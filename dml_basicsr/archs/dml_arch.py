import math

import torch
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from dml_basicsr.ops import init_basis, normalize_kernels, pixel_kernels
from .basis_degradation import BasisDegradationMixin
from .encoder_decoder import EncoderDecoder


@ARCH_REGISTRY.register()
class DMLNet(BasisDegradationMixin, nn.Module):
    """DML degradation network: HR image -> synthetic LR (Xiao, Yong, Zhang, ACCV 2020).

    ``LR(i, j) = <HR window at (s*i, s*j), k_ij>`` with ``k_ij = sum_m C_ij(m) * phi_m``: M learned
    basis kernels ``phi`` (normalised to sum 1) and weights ``C = sigmoid(F(HR))`` predicted by an
    encoder-decoder CNN. The weights are not normalised across m, so a kernel's sum (the local
    gain) is learned too. See :func:`dml_basicsr.ops.apply_basis_kernels` for the exact operator.

    Args:
        num_in_ch: 1 for Y, 3 for RGB (one shared basis; weights predicted from all channels).
        num_basis: M, number of basis kernels.
        kernel_size: K, odd.
        scale: s in 1..4; 1 keeps the LR on the HR grid (RealSR V2, official code).
        num_feat: features of the weight-prediction CNN.
        basis_init: 'random' (paper) or 'gaussian'.

    Shape:
        (B, num_in_ch, H, W) -> (B, num_in_ch, ceil(H/s), ceil(W/s))
    """

    def __init__(self, num_in_ch=1, num_basis=8, kernel_size=15, scale=1, num_feat=32, basis_init='random'):
        super().__init__()
        if scale not in (1, 2, 3, 4):
            raise ValueError(f'DMLNet: scale must be 1, 2, 3 or 4, got {scale!r}')
        if num_in_ch not in (1, 3):
            raise ValueError(f'DMLNet: num_in_ch must be 1 (Y) or 3 (RGB), got {num_in_ch!r}')
        self.num_in_ch = num_in_ch
        self.scale = scale
        # Saved with the weights so that a checkpoint says which scale it was trained for.
        self.register_buffer('scale_factor', torch.tensor(scale, dtype=torch.int64))
        self.basis = nn.Parameter(init_basis(num_basis, kernel_size, basis_init))
        self.weight_net = EncoderDecoder(num_in_ch, num_basis, num_feat, last_kernel_size=7)
        self._init_unit_gain()

    def _init_unit_gain(self):
        # Start with weights near 1/M everywhere: the initial kernel is the mean basis kernel,
        # with sum 1. With the default init, sigmoid outputs near 0.5 give a gain of about M/2,
        # and the first steps drive every weight into the sigmoid's flat zero region.
        last = self.weight_net.conv_last
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.fill_(-math.log(max(self.num_basis - 1, 1)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + 'scale_factor')
        if saved is not None and int(saved) != self.scale:
            raise ValueError(f'DMLNet: the checkpoint was trained for scale {int(saved)}, '
                             f'but this network has scale {self.scale}')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def num_basis(self):
        return self.basis.shape[0]

    @property
    def kernel_size(self):
        return self.basis.shape[-1]

    def basis_kernels(self):
        """The normalised (M, K, K) basis actually applied."""
        return normalize_kernels(self.basis)

    def predict_weights(self, hr):
        """(B, C, H, W) HR -> (B, M, H, W) weights in (0, 1), at every HR pixel (weight maps, kernels anywhere)."""
        return torch.sigmoid(self.weight_net(hr))

    def predict_sampled_weights(self, hr, tile_of=None):
        """(B, C, H, W) HR -> (B, M, ceil(H/s), ceil(W/s)): the weights the operator reads, at HR pixels (s*i, s*j).

        Equal to ``predict_weights(hr)[:, :, ::s, ::s]`` within float rounding (gradients too), with the weight
        CNN's last convolution and the sigmoid evaluated only there (stride s). ``tile_of``: see
        :meth:`~dml_basicsr.archs.basis_degradation.BasisDegradationMixin.degrade`."""
        if tile_of is None:
            return torch.sigmoid(self.weight_net(hr, stride=self.scale))
        return torch.sigmoid(self.weight_net.forward_crop(hr, *tile_of, stride=self.scale))

    def pixel_kernels(self, hr):
        """Per-pixel kernels (B, H, W, K, K) of every HR pixel, for inspection (memory heavy)."""
        return pixel_kernels(self.basis_kernels(), self.predict_weights(hr))

    def kernels_at(self, hr, points):
        """Kernels at chosen HR pixels.

        Args:
            hr: (B, C, H, W).
            points: (N, 2) long tensor of (y, x) HR coordinates.

        Returns:
            (B, N, K, K) kernels.
        """
        weights = self.predict_weights(hr)[:, :, points[:, 0], points[:, 1]]  # (B, M, N)
        return torch.einsum('bmn,mxy->bnxy', weights, self.basis_kernels())
