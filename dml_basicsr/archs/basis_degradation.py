"""The DML forward, in one place: LR(i, j) = <HR window at (s*i, s*j), sum_m C_ij(m) phi_m>.

Training (the networks' ``forward``), online and offline synthesis (``DMLDegradation.degrade_clean``) and tiling
(``degrade_tiled``) all call :meth:`BasisDegradationMixin.degrade`.
"""
from dml_basicsr.ops import apply_basis_kernels


class BasisDegradationMixin:
    """For networks with ``basis_kernels()`` (M, K, K), ``predict_sampled_weights(x, tile_of)`` and ``scale``."""

    def degrade(self, hr, weight_input=None, tile_of=None):
        """(B, C, H, W) HR -> (B, C, ceil(H/s), ceil(W/s)) LR.

        Args:
            weight_input: what the weights are predicted from (default ``hr``; the Y channel of an RGB ``hr`` for a
                Y model).
            tile_of: ``((top, left), (height, width))`` when ``hr`` is a crop at (top, left) of a larger image of
                that size: the weights are the whole image's at the crop's pixels (EncoderDecoder weights only).
        """
        weights = self.predict_sampled_weights(hr if weight_input is None else weight_input, tile_of)
        return apply_basis_kernels(hr, self.basis_kernels(), weights, self.scale, sampled=True)

    def forward(self, hr):
        return self.degrade(hr)
