"""What our ``basicsr train``/``test`` changes in BasicSR, installed for the run and removed after it.

basicsr 1.4.2's pipelines call module-level functions and ``BaseModel`` methods that run code from option files,
crash without CUDA, train on after a failed save or deadlock in distributed validation. For the run of our command
only, :func:`basicsr_run` puts in their place:

* ``parse_options`` (``basicsr.utils.options``, and the names ``basicsr.train``/``basicsr.test`` imported): the
  options of the command line our CLI already parsed (:func:`.basicsr_options.options_from_args`), plain YAML data;
  with it ``ordered_yaml``, ``_postprocess_yml_value`` and ``copy_opt_file``;
* ``basicsr.train.load_resume_state``: :func:`.training_resume.load_resume_state`;
* ``init_dist`` and its helpers, ``BaseModel.model_to_device``, ``SRModel.dist_validation``:
  :mod:`dml_basicsr.utils.distributed` (gloo on CPU, no deadlock);
* ``BaseModel.save_network``/``save_training_state``: :mod:`dml_basicsr.utils.training_saves` (atomic; a failed save
  stops the run);
* ``basicsr.train.MessageLogger``: :func:`message_logger_class`'s subclass, whose ETA at the last iteration is 0:00:00
  instead of ``-1 day, 23:59:59`` (with ``progress_bar``, a tqdm bar with its ETA at every logged iteration, and a
  log line every ``log_every``-th: ``basicsr adapt``).

``import dml_basicsr`` changes none of them: a BasicSR training in the same process, outside our command, runs
BasicSR's own functions. This project's models carry the saves and the distributed methods themselves
(:class:`dml_basicsr.models.safe_training.SafeTrainingMixin`), whoever trains them.
"""
import contextlib

from dml_basicsr.utils import distributed, training_saves
from .basicsr_options import (basicsr_argv, copy_opt_file, options_from_args, recorded_command, safe_ordered_yaml,
                              safe_yml_value)
from .training_resume import load_resume_state


def message_logger_class(log_every=None):
    """BasicSR's ``MessageLogger`` with an ETA that never goes below zero (BasicSR's counts one iteration too many
    and prints ``-1 day, 23:59:59`` at the last one). With ``log_every``: also a progress bar (iterations, ETA),
    moved at every call (the run's ``logger.print_freq`` should be 1), and a log line at every ``log_every``-th
    iteration and the last."""
    from basicsr.utils import MessageLogger

    class MessageLoggerWithEta(MessageLogger):
        def __call__(self, log_vars):
            max_iters = self.max_iters
            self.max_iters = max(max_iters, log_vars['iter'] + 1)
            try:
                return super().__call__(log_vars)
            finally:
                self.max_iters = max_iters

    if log_every is None:
        return MessageLoggerWithEta

    class MessageLoggerWithBar(MessageLoggerWithEta):
        def __init__(self, opt, start_iter=1, tb_logger=None):
            from tqdm import tqdm

            super().__init__(opt, start_iter, tb_logger)
            self.bar = tqdm(total=self.max_iters, initial=min(start_iter, self.max_iters), desc=opt['name'],
                            unit='it', dynamic_ncols=True)

        def __call__(self, log_vars):
            iteration = log_vars['iter']
            self.bar.update(max(0, min(iteration, self.max_iters) - self.bar.n))
            if iteration >= self.max_iters:
                self.bar.close()
            if iteration % log_every == 0 or iteration >= self.max_iters:
                return super().__call__(log_vars)
            return None

    return MessageLoggerWithBar


def replacements(args, log_every=None):
    """[(owner, attribute name, replacement)] for a run of the parsed command line ``args``."""
    import basicsr.test
    import basicsr.train
    import basicsr.utils.dist_util
    import basicsr.utils.options
    from basicsr.models.base_model import BaseModel
    from basicsr.models.sr_model import SRModel

    command = recorded_command(basicsr_argv(args))

    def parse_options(root_path, is_train=True):
        return options_from_args(args, root_path, is_train)

    def copy_opt_file_of_this_run(opt_file, experiments_root):
        copy_opt_file(opt_file, experiments_root, command)

    options = basicsr.utils.options
    return [
        (options, 'parse_options', parse_options),
        (basicsr.train, 'parse_options', parse_options),
        (basicsr.test, 'parse_options', parse_options),
        (options, 'ordered_yaml', safe_ordered_yaml),
        (options, '_postprocess_yml_value', safe_yml_value),
        (options, 'copy_opt_file', copy_opt_file_of_this_run),
        (basicsr.train, 'copy_opt_file', copy_opt_file_of_this_run),
        (basicsr.train, 'load_resume_state', load_resume_state),
        (options, 'init_dist', distributed.init_dist),
        (basicsr.utils.dist_util, 'init_dist', distributed.init_dist),
        (basicsr.utils.dist_util, '_init_dist_pytorch', distributed.init_dist_pytorch),
        (basicsr.utils.dist_util, '_init_dist_slurm', distributed.init_dist_slurm),
        (BaseModel, 'model_to_device', distributed.model_to_device),
        (SRModel, 'dist_validation', distributed.dist_validation),
        (BaseModel, 'save_network', training_saves.save_network),
        (BaseModel, 'save_training_state', training_saves.save_training_state),
        (basicsr.train, 'MessageLogger', message_logger_class(log_every)),
    ]


@contextlib.contextmanager
def basicsr_run(args, log_every=None):
    """Within this context BasicSR's pipelines run the way our command promises (see the module docstring); on
    leaving it, normally or by an exception, every replaced attribute is BasicSR's own again. ``log_every``: a
    progress bar, and a log line every so many iterations (see :func:`message_logger_class`)."""
    table = replacements(args, log_every)
    originals = [(owner, name, vars(owner)[name]) for owner, name, _ in table]
    try:
        for owner, name, replacement in table:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)
