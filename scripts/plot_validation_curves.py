"""Validation curves (mean of a metric over the images, per validated iteration) of several training runs, from
their ``metrics_<dataset>.csv``, in one small PNG.

    python scripts/plot_validation_curves.py --dataset City100_val --output docs/pictures/curves.png \
        --title "..." DML_x1=experiments/City100GPU_DML_x1 DirectNet_x1=experiments/City100GPU_DirectNet_x1 ...
"""
import argparse
import os

import matplotlib

from ship_pretrained import validation_figures  # the one reader of a run's per-iteration means

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def curve(csv_path, metric):
    """[(iter, mean of ``metric``)] sorted by iteration."""
    return [(it, means[metric]) for it, means in validation_figures(csv_path)[0].items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('runs', nargs='+', metavar='LABEL=EXPERIMENT')
    parser.add_argument('--dataset', default='City100_val')
    parser.add_argument('--metric', default='psnr')
    parser.add_argument('--title', default='')
    parser.add_argument('--output', required=True)
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=100)
    for run in args.runs:
        label, _, folder = run.rpartition('=')  # labels may hold '=' (M=8), folders do not
        points = curve(os.path.join(folder, f'metrics_{args.dataset}.csv'), args.metric)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', markersize=3, label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel(f'{args.metric.upper()} (dB)' if args.metric == 'psnr' else args.metric)
    ax.set_title(args.title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output)
    print(args.output)


if __name__ == '__main__':
    main()
