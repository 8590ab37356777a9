"""Online DML synthesis against the peer it replaces: Real-ESRGAN's second-order degradation.

Prints three Markdown tables per device (medians of interleaved repetitions, each call timed alone):

1. synthesis of one batch of HR (B, 3, S, S) RGB in [0, 1]: ``DMLDegradation`` of shipped models at their scales
   (AWGN sigma 5 and clamping, as the Syn-DML option files; as shipped: weights predicted only where the operator
   reads them, the weight CNN channels_last on the CPU), on RGB (kernels from the Y weights) and on Y, against
   Real-ESRGAN's ``feed_data`` synthesis as it runs by default: BasicSR's USMSharp (radius 50) sharpens the GT
   and the second-order degradation degrades the sharpened GT (``gt_usm: true`` in ``train_realesrnet_x4plus.yml``;
   ``RealESRGANModel`` always does), here the package's ``RealESRGANDegradation`` at x4 with that file's defaults
   (the kernels drawn per sample, as ``RealESRGANDataset`` draws them, inside the call); and against the chain
   alone (``gt_usm: false``, what the Syn-Real-ESRGAN row of the x4 Table 2 runs). RGB only: DiffJPEG needs 3
   channels, so the Y rows are compared with its RGB times too. Ratios DML / each;
2. the weight CNN during synthesis, noise-free LR of realsr-x4 on RGB: ``before`` (weights at every HR pixel, then
   the operator subsamples them), the shipped path (the last convolution at stride s: only the weights read), and
   the same with ``torch.inference_mode`` instead of ``no_grad``, with the weight CNN's convolution weights (and
   input) ``channels_last``, that compiled by ``torch.compile`` (timed after its compilation, whose time is
   printed), and the weight CNN under bfloat16 autocast (and float16 on CUDA; on a CPU its convolutions take
   seconds); largest |difference| from ``before``;
3. the synthesis share of an x4 SR training step (forward, L1, backward, Adam) on the same batch, for the MSRResNet
   of ``options/train_srx4_realsr_syndml.yml`` (num_feat 32, num_block 8) and for VDSR (20 convolutions of 64
   features): share = synthesis / (synthesis + step on a precomputed LR).

    python benchmarks/peer_degradation.py                          # CPU, and CUDA if available
    (from a checkout that is not the installed one: PYTHONPATH=. python benchmarks/peer_degradation.py)
    python benchmarks/peer_degradation.py --device cpu --threads 2 --repeats 3
    python benchmarks/peer_degradation.py --device cuda --repeats 20
"""
import argparse
import copy
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import dml_basicsr  # noqa: F401  (BasicSR's imports need its compatibility shim first)
from basicsr.archs.srresnet_arch import MSRResNet
from basicsr.utils.img_process_util import USMSharp
from dml_basicsr import DMLDegradation
from dml_basicsr.archs import VDSR
from dml_basicsr.degradation.dml_degradation import weight_net_input
from dml_basicsr.degradation.pretrained_models import pretrained_manifest
from dml_basicsr.degradation.real_esrgan_degradation import RealESRGANDegradation, draw_kernels
from dml_basicsr.ops import apply_basis_kernels, rgb_to_y, sample_weights
from timing import seconds

FEED_DATA = "Real-ESRGAN x4 feed_data: USM of the GT, then its degradation (gt_usm: true), RGB"
CHAIN = 'Real-ESRGAN x4 degradation alone (gt_usm: false), RGB'
BEFORE = 'before: weights at every HR pixel'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='all', help="cpu, cuda or all (the CPU, and CUDA if available)")
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--size', type=int, default=256, help='HR side (a multiple of 4)')
    parser.add_argument('--repeats', type=int, default=5, help='timed repetitions of each variant (after one warm-up)')
    parser.add_argument('--threads', type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument('--models', nargs='+', default=['city100-nikon-x2', 'realsr-x4'],
                        help=f'shipped DML models (of {", ".join(sorted(pretrained_manifest()))})')
    parser.add_argument('--no-train', action='store_true', help='skip the training-step table')
    return parser.parse_args()


def device_name(device):
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    try:
        with open('/proc/cpuinfo') as f:
            model = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f'{model}, {torch.get_num_threads()} threads'


def medians(variants, repeats, device):
    """{name: median ms}: one warm-up, then ``repeats`` rounds calling every variant once in turn."""
    times = {name: [] for name in variants}
    for i in range(repeats + 1):
        for name, fn in variants.items():
            elapsed = seconds(fn, device)
            if i:
                times[name].append(elapsed * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def print_table(header, rows):
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '|'.join('---' if i == 0 else '---:' for i in range(len(header))) + '|')
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    print()


COMPILED = 'strided + channels_last + torch.compile (inductor), after its compilation'


def weight_cnn_variants(deg, hr):
    """{name: fn -> noise-free LR}: how the weights reach the operator, and the weight CNN's execution modes."""
    net = copy.deepcopy(deg.net).to(memory_format=torch.contiguous_format)
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)  # the convolution weights (4-D)
    s = net.scale
    basis = net.basis_kernels()
    compiled = torch.compile(net_cl.predict_sampled_weights)

    def lr(full=False, inference=False, channels_last=False, use_compiled=False, autocast=None):
        with (torch.inference_mode() if inference else torch.no_grad()):
            model = net_cl if channels_last or use_compiled else net
            x = weight_net_input(model, hr)
            if channels_last or use_compiled:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(hr.device.type, dtype=autocast, enabled=autocast is not None):
                if use_compiled:
                    weights = compiled(x)
                else:
                    weights = (sample_weights(model.predict_weights(x), s) if full else
                               model.predict_sampled_weights(x))
            return apply_basis_kernels(hr, basis, weights.float(), s, sampled=True)

    variants = {BEFORE: lambda: lr(full=True),
                'strided: weights only where read (last conv at stride s)': lambda: lr(),
                'strided + inference_mode': lambda: lr(inference=True),
                'strided + channels_last weight CNN': lambda: lr(channels_last=True),
                COMPILED: lambda: lr(use_compiled=True)}
    # reduced precision for the weight CNN, the operator in fp32; float16 convolutions on a CPU take seconds
    for dtype in (torch.bfloat16, torch.float16) if hr.device.type == 'cuda' else (torch.bfloat16,):
        variants[f'strided + {str(dtype)[6:]} autocast weight CNN'] = lambda dtype=dtype: lr(autocast=dtype)
    return variants


def first_outputs(variants):
    """({name: output of the first call}, a line saying how long the compiled variant's first call took or why it
    failed); the compiled variant is dropped where it cannot run (torch.compile needs a C++ compiler on the CPU)."""
    outputs, compile_note = {}, ''
    for name, fn in list(variants.items()):
        start = time.perf_counter()
        try:
            outputs[name] = fn()
        except Exception as e:  # noqa: BLE001  (torch.compile fails in many ways where it cannot build)
            if name != COMPILED:
                raise
            del variants[name]
            compile_note = f'torch.compile did not run here: {type(e).__name__}: {str(e).splitlines()[0][:200]}'
            continue
        if name == COMPILED:
            compile_note = f'torch.compile: the first call (compilation) took {time.perf_counter() - start:.1f} s'
    return outputs, compile_note


def train_step_fn(sr_net, lr, hr):
    optimizer = torch.optim.Adam(sr_net.parameters(), lr=2e-4, betas=(0.9, 0.99))

    def step():
        loss = F.l1_loss(sr_net(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def run(device, args):
    torch.manual_seed(0)
    hr = torch.rand(args.batch, 3, args.size, args.size, device=device)
    hr = F.avg_pool2d(F.pad(hr, (1, 1, 1, 1), mode='reflect'), 3, 1)  # some local correlation, as photographs
    hr_y = rgb_to_y(hr)
    degs = {name: DMLDegradation.pretrained(name, noise_sigma=5.0, seed=0).to(device) for name in args.models}
    esrgan = RealESRGANDegradation(scale=4, seed=0).to(device)
    print(f'### {device.type}: {device_name(device)}; torch {torch.__version__}\n')
    print(f'batch {args.batch} of {args.size}x{args.size} HR; median ms of {args.repeats} interleaved repetitions\n')

    # 1. synthesis against Real-ESRGAN
    usm = USMSharp().to(device)
    variants = {FEED_DATA: lambda: esrgan(usm(hr)), CHAIN: lambda: esrgan(hr)}
    for name, deg in degs.items():
        for color, img in (('RGB', hr), ('Y', hr_y)):
            variants[f'DML {name} (x{deg.scale}), {color}'] = lambda deg=deg, img=img: deg(img)
    variants['Real-ESRGAN: of which drawing the kernels (CPU)'] = lambda: draw_kernels(esrgan.settings, args.batch)
    synth = medians(variants, args.repeats, device)
    print_table(['synthesis of one batch', 'ms', 'DML / feed_data', 'DML / degradation alone'],
                [[name, f'{t:.1f}'] + ([f'{t / synth[FEED_DATA]:.2f}', f'{t / synth[CHAIN]:.2f}']
                                       if name.startswith('DML') else ['', ''])
                 for name, t in synth.items()])

    # 2. the weight CNN's execution during synthesis, with exactness
    deg = degs.get('realsr-x4') or next(iter(degs.values()))
    cnn = weight_cnn_variants(deg, hr)
    outputs, compile_note = first_outputs(cnn)
    base = outputs[BEFORE]
    cnn_ms = medians(cnn, args.repeats, device)
    print(f'noise-free LR of {next(n for n, d in degs.items() if d is deg)} on RGB, weight-CNN variants')
    print_table(['variant', 'ms', 'vs before', 'max abs diff vs before'],
                [[name, f'{t:.1f}', f'{t / cnn_ms[BEFORE]:.3f}',
                  f'{(outputs[name] - base).abs().max().item():.1e}'] for name, t in cnn_ms.items()])
    print(compile_note)
    print(f'(reduced precision is kept only with a max abs diff of at most 0.5/255 = {0.5 / 255:.1e})\n')

    # 3. synthesis share of an SR training step (x4, RGB)
    if args.no_train:
        return
    x4 = degs.get('realsr-x4')
    if x4 is None:
        print('(training-step table: needs realsr-x4 in --models)\n')
        return
    lr = x4(hr)
    nets = {'MSRResNet (32 feat, 8 blocks)': MSRResNet(3, 3, num_feat=32, num_block=8, upscale=4),
            'VDSR (20 conv, 64 feat)': VDSR(3, 3, num_feat=64, num_conv=20, upscale=4)}
    steps = {name: train_step_fn(net.to(device), lr, hr) for name, net in nets.items()}
    step_ms = medians(steps, args.repeats, device)
    dml, feed, chain = synth['DML realsr-x4 (x4), RGB'], synth[FEED_DATA], synth[CHAIN]
    print('synthesis share of a training step = synthesis / (synthesis + step on a precomputed LR)')
    print_table(['SR network', 'step ms', 'DML realsr-x4 share', 'Real-ESRGAN feed_data share',
                 'Real-ESRGAN degradation-alone share'],
                [[name, f'{t:.1f}'] + [f'{100 * syn / (syn + t):.1f}%' for syn in (dml, feed, chain)]
                 for name, t in step_ms.items()])


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [args.device] if args.device != 'all' else ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for name in devices:
        run(torch.device(name), args)


if __name__ == '__main__':
    main()
