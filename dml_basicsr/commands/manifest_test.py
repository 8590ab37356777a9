"""``basicsr test`` of every row of a manifest of trained networks: an option file with a top-level ``manifest``.

    basicsr test -opt options/test_srx4_realsr_manifest.yml [--force_yml datasets:test_1:dataroot=/other/RealSR]

The option file has BasicSR's test sections (``name``, ``scale``, ``num_gpu``, ``datasets``, ``val``) and
``manifest: model_zoo/<table>/models.yml`` (relative to the current directory, like every path of an option file;
the format: :mod:`dml_basicsr.utils.model_manifest`) instead of ``network_g`` and ``path.pretrain_network_g``.
``--force_yml`` applies to the option file first. Then one option file per row is derived into a temporary folder
(removed at the end), with

* ``network_g``: the row's;
* ``path.pretrain_network_g``: its checkpoint (sha256 checked), ``strict_load_g: true`` and ``param_key_g`` the entry
  that holds its weights (``params`` for what ``basicsr train`` saves; ``~`` for a bare state dict);
* ``model_type``: the row's, else the option file's, else ``OnlineSynthesisSRModel``;
* ``color`` of every dataset: the row's ``color`` where it gives one (``rgb``: ``color: ~``), e.g. an RGB
  degradation model among Y ones in a Table 1 manifest (the metrics' ``test_y_channel`` still compares Y);
* ``name``: ``<name>_<slug of the label>``, e.g. ``SRx4_manifest_a-real`` for ``(a) real``.

The preflight checks every derived file (network built, checkpoint loaded strictly) before the first row runs;
then BasicSR's test pipeline runs for each row in turn, into ``results/<name>_<slug>/``. Last, one Markdown table of
the means of every row (``basicsr report``'s, the labels as method names, the option file's ``val.metrics`` as
columns) is printed and written to ``results/<name>_report.md``; for each dataset when there are several. A dataset
without an aligned ground truth (``LRFolderDataset``) gives SR pictures, no metrics: the report says where they are.
"""
import collections
import glob
import logging
import os
import re
import tempfile

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.utils.checkpoint import CheckpointError, load_checkpoint, state_dict_key
from dml_basicsr.utils.model_manifest import DEFAULT_MODEL_TYPE, ManifestError, read_manifest, row_model_type
from dml_basicsr.utils.options import OptionError
from dml_basicsr.utils.output_folder import OutputFolder, check_output_file, output_file
from dml_basicsr.utils.safe_yaml import dump_yaml
from .preflight import check_option_file, run_name
from .report import ReportError, build_table, find_metrics_csv

ManifestRun = collections.namedtuple('ManifestRun', 'label name opt_path results')


def label_slug(label):
    """The part of a results folder name that a row label gives: ``'(e) real + Syn-DML'`` -> ``'e-real-Syn-DML'``."""
    return re.sub(r'[^A-Za-z0-9]+', '-', label).strip('-')


def weights_key(checkpoint):
    """The ``param_key_g`` under which BasicSR's ``load_network`` finds the weights of ``checkpoint`` (None: the
    file is a bare state dict); CheckpointError naming the file if it holds none."""
    return state_dict_key(load_checkpoint(checkpoint), 'params', checkpoint)


def row_options(opt, row, name):
    """The option dict that tests one manifest row: ``opt`` without ``manifest``, with the row's network,
    checkpoint, model type and ``name``."""
    derived = {key: value for key, value in opt.items() if key != 'manifest'}  # plain data (safe_yaml)
    derived['name'] = name
    derived['model_type'] = row_model_type(row, opt.get('model_type') or DEFAULT_MODEL_TYPE)
    derived['network_g'] = dict(row['network_g'])
    derived['path'] = dict(derived.get('path') or {}, pretrain_network_g=row['checkpoint'], strict_load_g=True,
                           param_key_g=weights_key(row['checkpoint']))
    if row.get('color') is not None and isinstance(derived.get('datasets'), dict):
        color = None if row['color'] == 'rgb' else row['color']
        derived['datasets'] = {key: dict(section, color=color) if isinstance(section, dict) else section
                               for key, section in derived['datasets'].items()}
    return derived


def _in_row(manifest, index, row, error, derived_path):
    """ManifestError naming the manifest row for an error that a derived option file's check raised."""
    message = str(error).replace(f'{derived_path}: ', '')
    return ManifestError(f'{manifest}: rows[{index}] ({row["label"]!r}): {message}')


def _check_slugs(manifest, rows):
    seen = {}
    for index, row in enumerate(rows):
        slug = label_slug(row['label'])
        if not slug:
            raise ManifestError(f'{manifest}: rows[{index}] ({row["label"]!r}): the label has no letter or digit to '
                                'name its results folder')
        if slug in seen:
            raise ManifestError(f'{manifest}: rows[{index}] ({row["label"]!r}) and rows[{seen[slug]}] '
                                f'({rows[seen[slug]]["label"]!r}) would share the results folder suffix {slug!r}; '
                                'make the labels differ in a letter or digit')
        seen[slug] = index


def prepare_runs(opt, folder, debug=False, rows=None):
    """Derive, write into ``folder`` (through its OutputFolder: whole, never through a link) and check the option
    file of every row of ``opt['manifest']`` (``rows``: as read_manifest read it, if at hand), all of them before any
    runs; return [ManifestRun] in manifest order. Raises ManifestError naming the manifest row."""
    manifest = opt['manifest']
    rows = read_manifest(manifest) if rows is None else rows
    _check_slugs(manifest, rows)
    derived_folder = OutputFolder(folder, what='the folder of the derived option files')
    runs = []
    for index, row in enumerate(rows):
        name = f'{opt["name"]}_{label_slug(row["label"])}'
        derived_path = derived_folder.target(f'{name}.yml')
        try:
            derived = row_options(opt, row, name)
            derived_folder.write_text(f'{name}.yml', dump_yaml(derived))
            check_option_file(derived_path, command='test')
        except (OptionError, CheckpointError, DatasetError) as e:
            raise _in_row(manifest, index, row, e, derived_path) from None
        runs.append(ManifestRun(row['label'], name, derived_path,
                                os.path.join(os.getcwd(), 'results', run_name(name, debug))))
    return runs


def forget_basicsr_loggers():
    """Close and drop the handlers that BasicSR's ``get_root_logger`` added for the previous row (console and its
    ``test_*.log``): it adds them only once per process, so the next row would log into that row's folder."""
    from basicsr.utils import logger as basicsr_logger

    for name in list(basicsr_logger.initialized_logger):
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()
    basicsr_logger.initialized_logger.clear()


def run_rows(runs, run_one):
    """Call ``run_one(run)`` for every row in turn (it runs BasicSR's test pipeline), each with fresh loggers."""
    for index, run in enumerate(runs):
        if index:
            forget_basicsr_loggers()
        run_one(run)


def _has_metrics(folder, dataset):
    try:
        find_metrics_csv(folder, glob.escape(dataset))
    except ReportError:
        return False
    return True


def report_text(opt, runs):
    """The Markdown report of the rows' test runs: one table per test dataset (a heading each when there are
    several), or for a dataset without metrics (no aligned ground truth) a line saying where the pictures are."""
    scale = opt.get('scale')
    labels = {run.results: f'{run.label}_x{scale}' if scale is not None else run.label for run in runs}
    metrics = [str(name).lower() for name in ((opt.get('val') or {}).get('metrics') or {})] or None
    datasets = [section.get('name') or phase for phase, section in sorted((opt.get('datasets') or {}).items())]
    blocks = []
    for dataset in datasets:
        if not any(_has_metrics(run.results, dataset) for run in runs):
            where = ', '.join(os.path.relpath(os.path.join(run.results, 'visualization', dataset)) for run in runs)
            blocks.append(f'{dataset}: no metrics (no aligned ground truth); the SR images are in {where}')
            continue
        table = build_table([run.results for run in runs], labels, dataset=glob.escape(dataset), metrics=metrics)
        blocks.append(table if len(datasets) == 1 else f'**{dataset}**\n\n{table}')
    return '\n\n'.join(blocks)


def manifest_inputs(opt, rows, option_file=None):
    """The files a manifest test reads besides the test data: the option file (when known), the manifest and the
    checkpoint of every row of it (``rows``, as read_manifest read them)."""
    return [option_file, opt['manifest'], *(row['checkpoint'] for row in rows)]


def report_file(opt, debug=False, inputs=()):
    """(the OutputFolder of ``results``, at its real path as the run folders beside it; the report's name
    ``<name>_report.md``), checked (no link there, a plain name, none of ``inputs``: OutputFolderError) before any
    row runs."""
    path = os.path.join('results', f'{run_name(opt["name"], debug)}_report.md')
    check_output_file(path, [p for p in inputs if p], 'the report')
    return output_file(path, 'the report')


def write_report(opt, runs, debug=False, inputs=()):
    """:func:`report_text`, also written atomically to ``results/<name>_report.md`` (never one of ``inputs``);
    returns (text, path)."""
    folder, name = report_file(opt, debug, inputs)
    text = report_text(opt, runs)
    folder.write_text(name, text + '\n')
    return text, os.path.join('results', name)


def manifest_test(opt, run_one, debug=False, option_file=None):
    """Test every row of the manifest of ``opt`` (the option file ``option_file`` with ``--force_yml`` applied,
    checked by the preflight): derive and check every row's option file in a temporary folder, call
    ``run_one(run)`` for each (BasicSR's test pipeline on ``run.opt_path``), then write the report. Returns (report
    text, its path)."""
    rows = read_manifest(opt['manifest'])  # once: it checks every row's checkpoint against its sha256
    inputs = manifest_inputs(opt, rows, option_file)
    report_file(opt, debug, inputs)  # a link at the report, or an input there, is refused before the first row runs
    with tempfile.TemporaryDirectory(prefix='basicsr-manifest-') as folder:
        runs = prepare_runs(opt, folder, debug, rows)
        run_rows(runs, run_one)
    return write_report(opt, runs, debug, inputs)
