"""``basicsr report``: one Markdown table of mean metrics from experiment/results folders.

    basicsr report [--dataset NAME] [--label NAME=PATH ...] [--scale N] [--metrics psnr,ssim,lpips]
                   [--output FILE] PATH [PATH ...]

Each PATH is a BasicSR experiment folder (``experiments/<name>``), a results folder
(``results/<name>``) or a metrics CSV file. The folders hold the per-image CSV files that the
validation writes, ``metrics_<dataset>.csv`` with the columns ``iter,image,<metric>...``. Of a
training run the rows of the last (largest) iteration are used; of a test run (``iter`` is the run
name) the rows of the run named in the last row. A row repeated for the same image (a resumed run
validating the same iteration again) counts once, the last one.

The table has one row per method and one column group per scale, as in the paper:

    | Method | x2 PSNR | x2 SSIM | x4 PSNR | x4 SSIM |
    | --- | ---: | ---: | ---: | ---: |
    | DML | 31.23 | 0.8971 | 27.01 | 0.7712 |

The method is the folder's name (``--label NAME=PATH`` overrides it); a trailing ``_x2`` / ``_x3`` /
``-x4`` in the name gives the scale and is removed, so that runs of the same method at several
scales share one row. Names without such a suffix take ``--scale``, else the top-level ``scale`` of the
folder's option copy (its one ``.yml``, as BasicSR copies it into experiment and results folders); only without
any of these do they form a group without a scale.
PSNR is printed with 2 decimals, SSIM, LPIPS and other metrics with 4; a missing cell is ``-``.
"""
import csv
import fnmatch
import io
import math
import os
import re
import sys

from dml_basicsr.utils.bounded_read import MAX_CSV_BYTES, read_bounded
from dml_basicsr.utils.output_folder import OutputFolderError, check_output_file, output_file, real_inputs
from dml_basicsr.utils.safe_yaml import read_yaml
from . import UsageError, fail

HELP = 'One Markdown table (methods x scales) of the metrics CSVs of experiment/results folders.'
DEFAULT_METRICS = ('psnr', 'ssim', 'lpips')
METRICS_CSV = re.compile(r'^metrics_(?P<dataset>.+)\.csv$')
SCALE_SUFFIX = re.compile(r'^(?P<method>.+?)[_-][xX](?P<scale>\d+)$')


class ReportError(ValueError):
    """An input of the report is missing or malformed; the message names it."""


class NotARun(ReportError):
    """An input that holds no metrics at all (a folder without a metrics CSV, the table ``basicsr test`` wrote
    beside them): skipped, with a note, when the other inputs make a table."""


def split_scale(name):
    """``'DML_RCAN_x4'`` -> ``('DML_RCAN', 4)``; a name without a scale suffix -> ``(name, None)``."""
    match = SCALE_SUFFIX.match(name)
    if match is None:
        return name, None
    return match['method'], int(match['scale'])


def find_metrics_csv(path, dataset=None):
    """The metrics CSV of ``path`` (a folder or a CSV file); ``dataset`` is a name or glob pattern."""
    if os.path.isfile(path):
        if not path.lower().endswith('.csv'):
            raise NotARun(f'{path}: not a CSV file nor an experiment/results folder')
        return path
    if not os.path.isdir(path):
        raise ReportError(f'{path}: no such folder or file')
    found = {m['dataset']: os.path.join(path, name) for name in sorted(os.listdir(path))
             for m in [METRICS_CSV.match(name)] if m and os.path.isfile(os.path.join(path, name))}
    if not found:
        raise NotARun(f'{path}: no metrics_<dataset>.csv file in this folder (expected a BasicSR experiment '
                          'or results folder whose validation wrote per-image metrics)')
    names = ', '.join(found)
    if dataset is not None:
        chosen = [d for d in found if fnmatch.fnmatchcase(d, dataset)]
        if not chosen:
            raise ReportError(f'{path}: no metrics CSV of dataset {dataset!r} (it has: {names})')
        if len(chosen) > 1:
            raise ReportError(f'{path}: several datasets match {dataset!r} ({", ".join(chosen)}); '
                              'give one name with --dataset')
        return found[chosen[0]]
    if len(found) > 1:
        raise ReportError(f'{path}: metrics of several datasets ({names}); choose one with --dataset NAME')
    return next(iter(found.values()))


def default_name(path, csv_path):
    """The folder's name; for a CSV file given directly, its folder's name (metrics_*.csv) or its stem."""
    if os.path.isdir(path):
        return os.path.basename(os.path.normpath(os.path.abspath(path)))
    base = os.path.basename(csv_path)
    if METRICS_CSV.match(base):
        return os.path.basename(os.path.dirname(os.path.abspath(csv_path)))
    return os.path.splitext(base)[0]


def option_copy(path):
    """The option copy of the experiment/results folder ``path`` (its one ``.yml``), or None."""
    if not os.path.isdir(path):
        return None
    ymls = [name for name in os.listdir(path) if name.endswith(('.yml', '.yaml'))]
    return os.path.join(path, ymls[0]) if len(ymls) == 1 else None


def recorded_scale(path):
    """The top-level ``scale`` of the option copy in the experiment/results folder ``path`` (its one ``.yml``), or
    None."""
    copy = option_copy(path)
    if copy is None:
        return None
    try:
        scale = (read_yaml(copy, ReportError) or {}).get('scale')
    except (ReportError, AttributeError):
        return None
    return scale if isinstance(scale, int) and not isinstance(scale, bool) and scale > 0 else None


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def csv_lines(csv_path):
    """The text of a CSV file (a regular file of at most :data:`MAX_CSV_BYTES`, UTF-8) as a stream for ``csv``;
    ReportError naming it otherwise."""
    return io.StringIO(read_bounded(csv_path, MAX_CSV_BYTES, ReportError, 'CSV files', encoding='utf-8'), newline='')


def read_last_iter(csv_path):
    """(iter, {image: row}, metric columns) of the last iteration (or test run) in a metrics CSV."""
    try:
        reader = csv.DictReader(csv_lines(csv_path))
        rows = list(reader)
        columns = reader.fieldnames or []
    except csv.Error as e:
        raise ReportError(f'{csv_path}: cannot read ({e})') from e
    missing = [c for c in ('iter', 'image') if c not in columns]
    if missing:
        raise ReportError(f'{csv_path}: no {" and ".join(missing)} column (expected iter,image,<metrics>...; '
                          f'found {",".join(columns) or "nothing"})')
    if not rows:
        raise ReportError(f'{csv_path}: no rows below the header')
    iters = [_as_int(row['iter']) for row in rows]
    if all(i is not None for i in iters):
        last = max(iters)
        selected = [row for row, i in zip(rows, iters) if i == last]
    else:
        last = rows[-1]['iter']
        selected = [row for row in rows if row['iter'] == last]
    return last, {row['image']: row for row in selected}, [c for c in columns if c not in ('iter', 'image')]


def metric_columns(csv_path):
    """The metric columns (lower case) in the header of a metrics CSV: all but ``iter`` and ``image``."""
    try:
        header = next(csv.reader(csv_lines(csv_path)), [])
    except csv.Error as e:
        raise ReportError(f'{csv_path}: cannot read ({e})') from e
    return [c.lower() for c in header if c not in ('iter', 'image')]


def check_metrics_present(metrics, csv_paths):
    """ReportError naming the chosen metrics that no input has, and the metric columns the inputs have."""
    columns = list(dict.fromkeys(c for path in csv_paths for c in metric_columns(path)))
    missing = [m for m in metrics if m not in columns]
    if missing:
        raise ReportError(f'--metrics {",".join(missing)}: no input has {"it" if len(missing) == 1 else "them"} '
                          f'(their metric columns: {", ".join(columns) or "none"})')


def metric_means(csv_path, metrics):
    """{metric: mean over the images of the last iteration} for the metrics (lower case) the CSV has."""
    _, rows, columns = read_last_iter(csv_path)
    by_name = {}
    for column in columns:
        by_name.setdefault(column.lower(), column)
    present = [m for m in metrics if m in by_name]
    if not present:
        raise ReportError(f'{csv_path}: none of the metrics {", ".join(metrics)} (its columns: '
                          f'{", ".join(columns) or "none"}; choose with --metrics)')
    means = {}
    for metric in present:
        values = []
        for image, row in rows.items():
            text = (row.get(by_name[metric]) or '').strip()
            if not text:
                continue
            try:
                values.append(float(text))
            except ValueError:
                raise ReportError(f'{csv_path}: {by_name[metric]} of image {image} is {text!r}, not a number') from None
        if values:
            means[metric] = math.fsum(values) / len(values)
    return means


def _format(metric, value):
    if value is None:
        return '-'
    return f'{value:.2f}' if metric.startswith('psnr') else f'{value:.4f}'


def _header(metric, scale):
    return (f'x{scale} ' if scale is not None else '') + metric.upper()


def format_table(entries, metrics=DEFAULT_METRICS):
    """Markdown table of ``entries``, a list of (method, scale, {metric: mean}) in row order."""
    methods, cells = [], {}
    for method, scale, means in entries:
        if method not in methods:
            methods.append(method)
        cells[method, scale] = means
    scales = sorted({scale for _, scale in cells}, key=lambda s: (s is not None, s or 0))
    columns = [(scale, metric) for scale in scales for metric in metrics
               if any(metric in means for (_, s), means in cells.items() if s == scale)]
    lines = ['| Method | ' + ' | '.join(_header(metric, scale) for scale, metric in columns) + ' |',
             '| --- |' + ' ---: |' * len(columns)]
    for method in methods:
        row = [_format(metric, cells.get((method, scale), {}).get(metric)) for scale, metric in columns]
        lines.append(f'| {method.replace("|", chr(92) + "|")} | ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def build_table(paths, labels=None, dataset=None, scale=None, metrics=None):
    """The Markdown table (str) of the runs in ``paths``.

    Args:
        paths: experiment/results folders or metrics CSV files, in row order.
        labels: {path: name} naming some of them (the name may carry a scale suffix, e.g. 'DML_x4').
        dataset: which metrics_<dataset>.csv of a folder holding several (a name or glob pattern).
        scale: the scale of the runs whose name has no x<scale> suffix (else the ``scale`` of the run's own option
            copy).
        metrics: metric columns to show, in order (default psnr, ssim, lpips: those present). A chosen metric
            that only some inputs have is '-' for the others.

    Inputs that hold no metrics (:class:`NotARun`: e.g. ``results/*`` matching the ``.md`` that ``basicsr test``
    wrote, or a folder of a run that never validated) are skipped, and a line under the table names them.

    Raises:
        ReportError: an input is missing, has a malformed or no matching metrics CSV, no input is a run, two inputs
            give the same cell, or no input has a chosen metric.
    """
    chosen = metrics is not None
    metrics = [m.lower() for m in (metrics or DEFAULT_METRICS)]
    labels = {os.path.realpath(p): name for p, name in (labels or {}).items()}
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ReportError('no experiment/results folder or metrics CSV given')
    sources, skipped = {}, []
    for path in paths:
        try:
            csv_path = find_metrics_csv(path, dataset)
        except NotARun as e:
            skipped.append(e)
            continue
        name = labels.get(os.path.realpath(path)) or default_name(path, csv_path)
        method, run_scale = split_scale(name)
        run_scale = next((s for s in (run_scale, scale, recorded_scale(path)) if s is not None), None)
        key = (method, run_scale)
        if key in sources:
            where = f' at x{run_scale}' if run_scale is not None else ''
            raise ReportError(f'{sources[key]} and {csv_path} both give method {method!r}{where}; '
                              'rename one with --label NAME=PATH')
        sources[key] = csv_path
    if not sources:
        raise skipped[0] if len(skipped) == 1 else ReportError(
            f'none of the {len(skipped)} inputs holds metrics ({"; ".join(map(str, skipped))})')
    if chosen:  # before any input's own refusal: the message lists the columns of every input
        check_metrics_present(metrics, sources.values())
    entries = [(method, run_scale, metric_means(csv_path, metrics)) for (method, run_scale), csv_path in sources.items()]
    table = format_table(entries, metrics)
    for e in skipped:
        print(f'basicsr report: warning: skipped {e}', file=sys.stderr)
    if skipped:
        table += '\n\nSkipped (no metrics): ' + '; '.join(map(str, skipped))
    return table


def files_read(paths, dataset=None):
    """The files a report of ``paths`` reads: each input's metrics CSV (:func:`find_metrics_csv`; none for an input
    without metrics) and each folder's option copy, resolved (a link counts as the file it leads to)."""
    found = []
    for path in paths:
        try:
            found.append(find_metrics_csv(path, dataset))
        except NotARun:
            pass
        found.append(option_copy(path))
    return real_inputs(found)


def add_arguments(parser):
    parser.description = ('Print one Markdown table (methods x scales) of the mean metrics in the '
                          'metrics_<dataset>.csv files of experiment or results folders.')
    parser.add_argument('paths', nargs='*', metavar='PATH',
                        help='experiment or results folder (or metrics CSV file); a trailing _x2/_x3/_x4 in its name '
                        'is the scale')
    parser.add_argument('--dataset', metavar='NAME',
                        help='use metrics_NAME.csv where a folder has several (NAME may be a glob pattern)')
    parser.add_argument('--label', action='append', default=[], metavar='NAME=PATH',
                        help='name the row of PATH (added as an input if not given); NAME may end in _x<scale>')
    parser.add_argument('--scale', type=int, metavar='N', help='scale of the inputs whose name has no _x<N> suffix')
    parser.add_argument('--metrics', metavar='LIST',
                        help=f'comma-separated metric columns, in order; each must be in some input (default: '
                        f'{",".join(DEFAULT_METRICS)}, those present)')
    parser.add_argument('--output', metavar='FILE', help='also write the table to FILE')


def _labelled_paths(args):
    """(paths, {path: name}) of the positional PATHs and the --label NAME=PATH entries."""
    paths, labels = list(args.paths), {}
    for entry in args.label:
        name, sep, path = entry.rpartition('=')  # a name may hold '=' ('DML, M=8_x1'), the path not
        if not sep or not name.strip() or not path:
            raise UsageError(f'--label expects NAME=PATH, got {entry!r}')
        if os.path.realpath(path) in labels:
            raise UsageError(f'--label: {path} is labelled twice')
        labels[os.path.realpath(path)] = name.strip()
        if os.path.realpath(path) not in {os.path.realpath(p) for p in paths}:
            paths.append(path)
    if not paths:
        raise UsageError('give at least one experiment/results folder or metrics CSV')
    return paths, labels


def run(args):
    paths, labels = _labelled_paths(args)
    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(',') if m.strip()]
        if not metrics:
            raise UsageError('--metrics is empty')
    try:
        if args.output:
            check_output_file(args.output, [*paths, *files_read(paths, args.dataset)])
            folder, name = output_file(args.output)
        table = build_table(paths, labels, dataset=args.dataset, scale=args.scale, metrics=metrics)
        if args.output:
            folder.write_text(name, table + '\n')
    except (ReportError, OutputFolderError) as e:
        return fail('report', e)
    except OSError as e:
        return fail('report', f'cannot write {args.output}: {e.strerror or e}')
    print(table)
    return 0
