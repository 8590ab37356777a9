"""Speed and memory of the DML operator ``apply_basis_kernels`` against the unfold reference.

For every scale it times, interleaved and repeated (medians), the forward pass (under no_grad, as
online synthesis) and forward+backward (as DMLNet training: gradients for the basis and the weights,
none for the image) of

* ``apply_basis_kernels``, the automatic choice (the path it took is named),
* its two paths called explicitly: ``fft`` (``ops/basis_fft.py``) and ``direct`` (conv2d),
* ``before``: the previous implementation (strided conv2d, then einsum; autograd),
* ``unfold``: every per-pixel kernel materialised, then one inner product per pixel (the reference
  of ``tests/test_ops.py``),

and an N x N fp32 ``torch.matmul`` in the same rounds, for the machine's matmul rate.

Counting: forward = B*C*ceil(H/s)*ceil(W/s)*M*K*K multiply-adds (MACs) of a direct evaluation;
forward+backward = 2x that (the basis gradient is a correlation of the same size; the weights
gradient's B*C*h*w*M MACs are left out, the image needs none). TFLOP/s = 2 * MACs / time, whatever
the path really computes (the FFT path does fewer operations). "% matmul" = that rate over the
matmul's. Peak memory: the most tensor memory allocated at once during one call, inputs excluded
(outputs and gradients included); on CPU from the PyTorch profiler's allocation timeline, on CUDA
from ``torch.cuda.max_memory_allocated``.

    .venv/bin/python benchmarks/operator.py --batch 8                    # CPU (the table in docs/benchmarks.md)
    python benchmarks/operator.py --device cuda --batch 16               # GPU, the paper's batch
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import dml_basicsr  # noqa: F401
from dml_basicsr.ops.basis_conv import apply_basis_kernels, apply_basis_kernels_direct, output_size, select_method
from dml_basicsr.ops.basis_fft import apply_basis_kernels_fft
from timing import seconds, sync


def before(img, basis, weights, scale):
    """The implementation this package had before the FFT path: strided conv2d + einsum."""
    b, c, h, w = img.shape
    m, k, _ = basis.shape
    pad = k // 2
    padded = F.pad(img.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode='reflect')
    resp = F.conv2d(padded, basis.unsqueeze(1).to(img.dtype), stride=scale)
    resp = resp.reshape(b, c, m, resp.shape[-2], resp.shape[-1])
    return torch.einsum('bcmhw,bmhw->bchw', resp, weights[:, :, ::scale, ::scale].to(resp.dtype))


def unfold(img, basis, weights, scale):
    """Reference: materialise every per-pixel kernel and take the inner product with its window."""
    b, c, h, w = img.shape
    k = basis.shape[-1]
    pad = k // 2
    padded = F.pad(img, (pad, pad, pad, pad), mode='reflect')
    windows = F.unfold(padded, k).view(b, c, k * k, h, w)
    kernels = torch.einsum('bmhw,mxy->bhwxy', weights, basis).reshape(b, h, w, k * k)
    out = torch.einsum('bckhw,bhwk->bchw', windows, kernels)
    return out[:, :, ::scale, ::scale]


VARIANTS = {'apply_basis_kernels': apply_basis_kernels, 'fft': apply_basis_kernels_fft,
            'direct': apply_basis_kernels_direct, 'before': before, 'unfold': unfold}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--channels', type=int, default=1)
    parser.add_argument('--size', type=int, default=192, help='HR side')
    parser.add_argument('--basis', type=int, default=8, help='M')
    parser.add_argument('--kernel', type=int, default=15, help='K')
    parser.add_argument('--scales', default='1,2,3,4')
    parser.add_argument('--reps', type=int, default=5, help='timed rounds')
    parser.add_argument('--ref-reps', type=int, default=3, help='rounds that also time the (slow) unfold reference')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--matmul', type=int, default=None, help='matmul side (default 2048 CPU, 8192 CUDA)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default)')
    parser.add_argument('--variants', default=','.join(VARIANTS))
    parser.add_argument('--no-memory', action='store_true')
    return parser.parse_args()


def make_call(fn, inputs, scale, mode):
    img, basis, weights = inputs

    def forward():
        with torch.no_grad():
            return fn(img, basis, weights, scale)

    def forward_backward():
        basis.grad = weights.grad = None
        fn(img, basis, weights, scale).sum().backward()

    return forward if mode == 'forward' else forward_backward


def peak_memory(call, device, inputs):
    """Bytes of tensor memory live at the peak of one call, beyond what existed before."""
    for t in inputs:
        t.grad = None
    if device.type == 'cuda':
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        call()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                     with_stack=True) as prof:
            call()
        live = peak = 0
        created = set()
        for _, action, key, size in sorted(prof._memory_profile().timeline, key=lambda e: e[0]):
            if action.name == 'CREATE':
                created.add(key)
                live += size
            elif action.name == 'DESTROY' and key in created:  # not what existed before the call
                live -= size
            peak = max(peak, live)
        return peak
    except Exception:  # a private API: report nothing rather than a wrong number
        return None


def main():
    args = parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    scales = [int(s) for s in args.scales.split(',')]
    variants = args.variants.split(',')
    b, c, hw, m, k = args.batch, args.channels, args.size, args.basis, args.kernel
    g = torch.Generator().manual_seed(0)
    img = torch.rand(b, c, hw, hw, generator=g).to(device)
    basis = torch.rand(m, k, k, generator=g).div_(k * k).to(device).requires_grad_()
    weights = torch.rand(b, m, hw, hw, generator=g).to(device).requires_grad_()
    inputs = (img, basis, weights)
    n = args.matmul or (8192 if device.type == 'cuda' else 2048)
    ma, mb = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    calls = {}
    for s in scales:
        for mode in ('forward', 'forward+backward'):
            for name in variants:
                calls[(s, mode, name)] = make_call(VARIANTS[name], inputs, s, mode)
    calls['matmul'] = lambda: ma @ mb

    times = {key: [] for key in calls}
    start = time.perf_counter()
    for r in range(args.warmup + args.reps):
        for key, call in calls.items():  # interleaved: drifts in machine load hit every variant alike
            if key != 'matmul' and key[2] == 'unfold' and r >= args.warmup + args.ref_reps:
                continue
            elapsed = seconds(call, device)
            if r >= args.warmup:
                times[key].append(elapsed)
    elapsed = time.perf_counter() - start
    med = {key: statistics.median(t) for key, t in times.items()}
    matmul_rate = 2 * n**3 / med['matmul']

    memory = {}
    if not args.no_memory:
        for key, call in calls.items():
            if key != 'matmul':
                memory[key] = peak_memory(call, device, inputs)

    threads = torch.get_num_threads()
    dev = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'cpu, {threads} thread{"s" * (threads > 1)}'
    print(f'device: {dev}; torch {torch.__version__}; B={b}, C={c}, {hw}x{hw}, M={m}, K={k}; '
          f'medians of {args.reps} interleaved rounds ({args.ref_reps} for unfold); '
          f'fp32 matmul {n}x{n}: {matmul_rate / 1e12:.3f} TFLOP/s; timing took {elapsed:.0f} s')
    for mode in ('forward', 'forward+backward'):
        factor = 1 if mode == 'forward' else 2
        print(f'\n{mode}' + (' (under no_grad)' if mode == 'forward' else ' (gradients for basis and weights)'))
        print('\n| s | variant | path | ms | TFLOP/s | % matmul | x unfold | peak MiB |')
        print('|---|---|---|---:|---:|---:|---:|---:|')
        for s in scales:
            macs = factor * b * c * output_size(hw, s) ** 2 * m * k * k
            ref = med.get((s, mode, 'unfold'))
            for name in variants:
                t = med[(s, mode, name)]
                rate = 2 * macs / t
                path = ''
                if name == 'apply_basis_kernels':
                    with torch.set_grad_enabled(mode != 'forward'):
                        path = select_method(img, basis, weights, s)
                elif name in ('fft', 'direct'):
                    path = name
                speedup = f'{ref / t:.1f}' if ref else '-'
                mem = memory.get((s, mode, name))
                mem = f'{mem / 2**20:.1f}' if mem is not None else '-'
                print(f'| {s} | {name} | {path} | {t * 1e3:.1f} | {rate / 1e12:.3f} | {100 * rate / matmul_rate:.0f}% '
                      f'| {speedup} | {mem} |')


if __name__ == '__main__':
    main()
