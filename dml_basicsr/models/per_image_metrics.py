"""Per-image validation records shared by the models: the metrics CSV and the saved-image paths.

Every validation appends one row per image to ``<log dir>/metrics_<dataset>.csv`` (the
experiment folder when training, the results folder for ``basicsr test``), with the columns
``iter,image,<metric>...``; ``iter`` is the iteration, or the run name for a test run.
``basicsr report`` reads these files.
"""
import csv
import io
import os
import stat
from os import path as osp

from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger

from dml_basicsr.utils.bounded_read import MAX_CSV_BYTES, read_at_most
from dml_basicsr.utils.options import OptionError
from dml_basicsr.utils.output_folder import OutputFolder, OutputFolderError, is_name_fragment


def image_metrics(sr_img, gt_img, metric_opts):
    """{name: float} of BasicSR metric options (``val.metrics``) for one pair of uint8 HWC images; OptionError if a
    ``crop_border`` leaves nothing of the image (BasicSR would report NaN)."""
    for name, opt_ in metric_opts.items():
        border, side = (opt_.get('crop_border', 0) if isinstance(opt_, dict) else 0), min(gt_img.shape[:2])
        if isinstance(border, int) and 2 * border >= side:
            raise OptionError(f'val.metrics.{name}.crop_border {border} leaves nothing of a {gt_img.shape[1]}x'
                              f'{gt_img.shape[0]} validation image; use a crop_border below {side // 2}')
    data = dict(img=sr_img, img2=gt_img)
    return {name: float(calculate_metric(data, opt_)) for name, opt_ in metric_opts.items()}


def read_own_file(path):
    """The bytes of the regular file ``path`` (b'' if there is none), opened without following a link (OSError
    ELOOP if it is one; :func:`~dml_basicsr.utils.bounded_read.open_regular_file` follows links); OutputFolderError
    if it is no regular file (a FIFO would block, a device never end) or larger than a metrics CSV may be."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return b''
    with os.fdopen(fd, 'rb') as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OutputFolderError(f'{path} is not a regular file: move it away')
        if st.st_size > MAX_CSV_BYTES:
            raise OutputFolderError(f'{path}: {st.st_size} bytes, more than the {MAX_CSV_BYTES} a metrics CSV may have')
        return read_at_most(f, MAX_CSV_BYTES)


def csv_rows_text(rows, header):
    """Dict ``rows`` as CSV text (the csv module's ``\\r\\n`` lines), after a header line if ``header``."""
    out = io.StringIO(newline='')
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def append_metrics_csv(path, rows, root=None):
    """Append dict rows to a CSV file, writing the header when the file is new. The file is rewritten whole (old
    rows and new, atomically) through an :class:`OutputFolder` of ``root`` (the run folder): OutputFolderError,
    before anything is written, if the file or a folder from ``root`` down to it is a symbolic link."""
    folder = OutputFolder(osp.dirname(osp.abspath(path)), what='metrics folder',
                          root=None if root is None else osp.abspath(root))
    name = osp.basename(path)
    old = read_own_file(folder.target(name))
    folder.write_bytes(name, old + csv_rows_text(rows, header=not old).encode('utf-8'))


class PerImageMetricsMixin:
    """For BasicSR models (``BaseModel`` subclasses) whose ``nondist_validation`` collects one row of
    metrics per image: best-metric records, the means, the CSV and BasicSR's log lines."""

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """BasicSR's, except for the extra validation its ``train_pipeline`` runs after the last iteration (with a
        ``current_iter`` past ``total_iter``: its loop counts on in every remaining epoch): skipped when
        ``total_iter`` itself was just validated on this set (the same weights: a duplicate CSV row, a fake point on
        the curves), else recorded as ``total_iter``, the iteration whose weights it validates."""
        total = (self.opt.get('train') or {}).get('total_iter') if self.is_train else None
        name = dataloader.dataset.opt.get('name')
        validated = self.__dict__.setdefault('_validated_at', {})
        if total is not None and current_iter > int(total):
            if validated.get(name) == int(total):
                get_root_logger().info(f'Validation {name} of iteration {int(total)} done already: not repeated')
                return
            current_iter = int(total)
        validated[name] = current_iter
        super().validation(dataloader, current_iter, tb_logger, save_img)

    def run_folder(self):
        """The folder this run owns: ``path.experiments_root`` when training, ``path.results_root`` when testing
        (None for a model built without them). Nothing of the validation is written outside it, nor through a link
        below it."""
        return self.opt['path'].get('experiments_root' if self.opt['is_train'] else 'results_root')

    def output_folder(self, path):
        """The :class:`OutputFolder` ``path`` (inside :meth:`run_folder`) that validation files are written into."""
        return OutputFolder(path, what='validation folder', root=self.run_folder())

    def validation_image_path(self, dataset_name, img_name, current_iter):
        """Where BasicSR's SRModel saves a validation image (``val.save_img``); OptionError if ``val.suffix`` is no
        plain part of a file name."""
        if self.opt['is_train']:
            return osp.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        if not is_name_fragment(str(suffix)):
            raise OptionError(f'val.suffix {suffix!r} is no plain part of a file name (no / or \\, no ..)')
        return osp.join(self.opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')

    def save_validation_image(self, img, dataset_name, img_name, current_iter):
        """Write a uint8 validation image at :meth:`validation_image_path` (whole, never through a link)."""
        path = self.validation_image_path(dataset_name, img_name, current_iter)
        self.output_folder(osp.dirname(path)).write_png(osp.basename(path), img)

    def init_best_records(self, dataset_name, metric_opts, extra_lower_better=()):
        """BasicSR's best-metric records, plus lower-is-better ones for metrics outside ``val.metrics``."""
        if metric_opts:
            self._initialize_best_metric_results(dataset_name)
        if not hasattr(self, 'best_metric_results'):
            self.best_metric_results = {}
        records = self.best_metric_results.setdefault(dataset_name, {})
        for name in extra_lower_better:
            records.setdefault(name, dict(better='lower', val=float('inf'), iter=-1))

    def finish_validation(self, dataset_name, rows, current_iter, tb_logger):
        """Mean over ``rows`` -> ``metric_results``, best records, the CSV, and BasicSR's log lines."""
        names = list(dict.fromkeys(k for row in rows for k in row if k not in ('iter', 'image')))
        self.metric_results = {}
        for name in names:
            values = [row[name] for row in rows if name in row]
            self.metric_results[name] = sum(values) / len(values)
        for name, value in self.metric_results.items():
            self._update_best_metric_result(dataset_name, name, value, current_iter)
        if rows and self.opt.get('rank', 0) == 0:
            path = osp.join(self.opt['path']['log'], f'metrics_{dataset_name}.csv')
            append_metrics_csv(path, rows, self.run_folder())
            get_root_logger().info(f'Per-image metrics appended to {path}')
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
