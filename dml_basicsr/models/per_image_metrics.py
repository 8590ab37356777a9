"""Per-image validation records shared by the models: the metrics CSV and the saved-image paths.

Every validation appends one row per image to ``<log dir>/metrics_<dataset>.csv`` (the
experiment folder when training, the results folder for ``basicsr test``), with the columns
``iter,image,<metric>...``; ``iter`` is the iteration, or the run name for a test run.
``basicsr report`` reads these files.
"""
import csv
import os
from os import path as osp

from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger

from dml_basicsr.utils.options import OptionError
from dml_basicsr.utils.output_folder import OutputFolder


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


def append_metrics_csv(path, rows):
    """Append dict rows to a CSV file, writing the header when the file is new."""
    is_new = not osp.exists(path)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if is_new:
            writer.writeheader()
        writer.writerows(rows)


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

    def validation_image_path(self, dataset_name, img_name, current_iter):
        """Where BasicSR's SRModel saves a validation image (``val.save_img``)."""
        if self.opt['is_train']:
            return osp.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return osp.join(self.opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')

    def save_validation_image(self, img, dataset_name, img_name, current_iter):
        """Write a uint8 validation image at :meth:`validation_image_path` (whole, never through a link)."""
        path = self.validation_image_path(dataset_name, img_name, current_iter)
        OutputFolder(osp.dirname(path), what='validation folder').write_png(osp.basename(path), img)

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
            append_metrics_csv(path, rows)
            get_root_logger().info(f'Per-image metrics appended to {path}')
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
