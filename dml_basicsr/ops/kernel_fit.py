"""The least-squares K x K kernel of aligned HR-LR pairs, in closed form: the best spatially invariant linear blur
(with top-left sampling, the operator's convention) that any single kernel can be for these pairs.

    kernel, mse = least_squares_kernel(pairs, kernel_size=15, scale=4)   # apply it with UniformKernelNet
"""
import torch

from .basis_conv import basis_responses

FIT_BORDER = 8  # LR pixels left out of the fit: the reflect padding at the image edge is not the camera's


class KernelFit:
    """Accumulates the normal equations of the least-squares kernel over pairs (float64)."""

    def __init__(self, kernel_size, scale, border=FIT_BORDER):
        k2 = kernel_size * kernel_size
        self.kernel_size, self.scale, self.border = kernel_size, scale, border
        self.one_hot = torch.eye(k2, dtype=torch.float64).view(k2, kernel_size, kernel_size)
        self.gram = torch.zeros(k2, k2, dtype=torch.float64)
        self.cross = torch.zeros(k2, dtype=torch.float64)
        self.target_energy, self.count = 0., 0

    def interior(self, x):
        """(..., h, w) -> the values away from ``border`` LR pixels of each edge, flattened over h and w."""
        b = self.border
        return x[..., b:x.shape[-2] - b, b:x.shape[-1] - b].reshape(*x.shape[:-2], -1)

    def design(self, hr):
        """(1, 1, H, W) HR -> (K*K, N): each kernel tap's response at the fitted LR positions."""
        return self.interior(basis_responses(hr.double(), self.one_hot, self.scale)[0, 0])

    def add(self, hr, lr):
        """Add one pair: HR (1, 1, H, W) and its LR (1, 1, ceil(H/s), ceil(W/s)); ValueError if nothing lies inside
        the border."""
        design, target = self.design(hr), self.interior(lr.double()[0, 0])
        if target.numel() == 0:
            raise ValueError(f'LR of {tuple(lr.shape[-2:])} has no pixels inside a {self.border}-pixel border')
        self.gram += design @ design.T
        self.cross += design @ target
        self.target_energy += float(target @ target)
        self.count += target.numel()
        return design, target

    def solve(self):
        """(kernel (K, K) float64, its mean squared error on the added pairs)."""
        if not self.count:
            raise ValueError('no pairs to fit a kernel on')
        kernel = torch.linalg.lstsq(self.gram, self.cross[:, None]).solution[:, 0]
        mse = (self.target_energy - 2 * kernel @ self.cross + kernel @ self.gram @ kernel) / self.count
        return kernel.view(self.kernel_size, self.kernel_size), float(mse)


def least_squares_kernel(pairs, kernel_size=15, scale=1, border=FIT_BORDER):
    """The least-squares kernel of ``pairs`` (HR (1, 1, H, W), LR (1, 1, ceil(H/s), ceil(W/s))), fitted away from a
    ``border`` of LR pixels; returns (kernel (K, K) float64, its training mean squared error)."""
    fit = KernelFit(kernel_size, scale, border)
    for hr, lr in pairs:
        fit.add(hr, lr)
    return fit.solve()

