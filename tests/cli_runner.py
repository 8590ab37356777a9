"""``basicsr`` for the tests: in this process (fast, the default) or in a fresh one (where that is the point)."""
import contextlib
import io
import logging
import os
import random
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]



def run_cli_subprocess(args, cwd, timeout=300):
    """Run ``python -m dml_basicsr <args>`` in ``cwd`` in a fresh CPU-only process; return the completed process.

    For the few tests where a fresh process is the point (console entry, resuming from disk);
    everything else uses the much cheaper in-process :func:`run_cli`.
    """
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), CUDA_VISIBLE_DEVICES='')
    return subprocess.run([sys.executable, '-m', 'dml_basicsr', *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


# The warning filters of a fresh ``python`` (no -W, no PYTHONWARNINGS): what a subprocess would show.
_FRESH_WARNING_FILTERS = [('ignore', ResourceWarning), ('ignore', ImportWarning), ('ignore', PendingDeprecationWarning),
                          ('ignore', DeprecationWarning)]


def _reset_basicsr_logging():
    """Forget BasicSR's loggers as a fresh process would not know them.

    ``basicsr.utils.logger.get_root_logger`` adds its handlers (console, and the ``train_*.log`` /
    ``test_*.log`` file) only the first time a name is seen, recorded in ``initialized_logger``.
    """
    from basicsr.utils import logger as basicsr_logger

    for name in list(basicsr_logger.initialized_logger) + ['basicsr']:
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            log.removeHandler(handler)
            handler.close()
        log.setLevel(logging.NOTSET)
        log.propagate = True
    basicsr_logger.initialized_logger.clear()


def _show_warning_on_stderr(message, category, filename, lineno, file=None, line=None):
    (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _fresh_warnings():
    """Warnings printed to (the captured) stderr under a fresh interpreter's filters, not recorded by pytest."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category in _FRESH_WARNING_FILTERS:
            warnings.simplefilter(action, category)
        warnings.filterwarnings('default', category=DeprecationWarning, module='__main__')
        warnings.showwarning = _show_warning_on_stderr
        yield


@contextlib.contextmanager
def _fresh_root_logger():
    """The root logger as in a fresh process: no handlers (pytest's capture ones removed), level WARNING."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def _fd_capture(fd, sink):
    """Bytes written straight to file descriptor ``fd`` (C libraries) appended to the list ``sink``."""
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(fd)
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            sink.append(tmp.read().decode(errors='replace'))


@contextlib.contextmanager
def _cpu_only():
    """What ``CUDA_VISIBLE_DEVICES=''`` does to a fresh process, for code run in this one."""
    saved = torch.cuda.is_available, torch.cuda.device_count, os.environ.get('CUDA_VISIBLE_DEVICES')
    torch.cuda.is_available = lambda: False
    torch.cuda.device_count = lambda: 0
    os.environ['CUDA_VISIBLE_DEVICES'] = ''
    try:
        yield
    finally:
        torch.cuda.is_available, torch.cuda.device_count = saved[:2]
        if saved[2] is None:
            os.environ.pop('CUDA_VISIBLE_DEVICES', None)
        else:
            os.environ['CUDA_VISIBLE_DEVICES'] = saved[2]


@contextlib.contextmanager
def _restored_process_state():
    """Undo what a BasicSR run changes in the process: cwd, argv, environment, RNGs, torch flags, loggers."""
    import basicsr.train

    cwd, argv, environ = os.getcwd(), sys.argv, dict(os.environ)
    argv_items = list(argv)
    rng = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    # Before CUDA starts, torch.cuda.manual_seed (BasicSR's set_random_seed) only queues the seed for later.
    lazy_seeds = getattr(torch.cuda, '_lazy_seed_tracker', None)
    queued_seeds = None if lazy_seeds is None else {k: list(v) if isinstance(v, list) else v
                                                    for k, v in vars(lazy_seeds).items()}
    dist_before = torch.distributed.is_available() and torch.distributed.is_initialized()
    flags = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.get_num_threads(), torch.is_grad_enabled(),
             torch.get_default_dtype())
    # SummaryWriters that a run failing half-way would leave open (train_pipeline closes its own at the end).
    init_tb_logger, writers = basicsr.train.init_tb_logger, []

    def tracked_init_tb_logger(*args, **kwargs):
        writer = init_tb_logger(*args, **kwargs)
        writers.append(writer)
        return writer

    basicsr.train.init_tb_logger = tracked_init_tb_logger
    _reset_basicsr_logging()  # also when a unit test initialised the 'basicsr' logger before this run
    try:
        yield
    finally:
        basicsr.train.init_tb_logger = init_tb_logger
        for writer in writers:
            if writer is not None:
                writer.close()
        _reset_basicsr_logging()
        wandb = sys.modules.get('wandb')
        if wandb is not None and getattr(wandb, 'run', None) is not None:
            wandb.finish()
        if not dist_before and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.chdir(cwd)
        sys.argv = argv  # BasicSR's CLI rebinds sys.argv for its own parser
        argv[:] = argv_items
        if dict(os.environ) != environ:
            os.environ.clear()
            os.environ.update(environ)
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        elif queued_seeds is not None and not torch.cuda.is_initialized():
            for key, value in queued_seeds.items():
                setattr(lazy_seeds, key, value)
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = flags[:4]
        if (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) \
                != flags[4:6]:
            torch.use_deterministic_algorithms(flags[4], warn_only=flags[5])
        if torch.get_num_threads() != flags[6]:
            torch.set_num_threads(flags[6])
        torch.set_grad_enabled(flags[7])
        torch.set_default_dtype(flags[8])


def run_cli(args, cwd):
    """``basicsr <args>`` run in this process as ``python -m dml_basicsr <args>`` would run in ``cwd``.

    Returns a :class:`subprocess.CompletedProcess` (``returncode``, ``stdout``, ``stderr``): the
    return value of :func:`dml_basicsr.cli.main`, or the code of a ``SystemExit`` (argparse), with
    everything written to ``sys.stdout``/``sys.stderr``, warnings (under a fresh interpreter's
    filters) and messages of loggers without handlers, then what went straight to file descriptors
    1/2 (C libraries; appended, so its order relative to the rest is lost). CUDA is hidden, as the
    subprocess's ``CUDA_VISIBLE_DEVICES=''`` does, and the process state a run changes (see
    :func:`_restored_process_state`) is put back, so the next run starts as a fresh process would.
    Other exceptions propagate to pytest (a subprocess would print the traceback and exit 1).
    """
    from dml_basicsr.cli import main

    args = [str(a) for a in args]
    out, err, fd_out, fd_err = io.StringIO(), io.StringIO(), [], []
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_restored_process_state())
            stack.enter_context(_cpu_only())
            stack.enter_context(_fd_capture(1, fd_out))
            stack.enter_context(_fd_capture(2, fd_err))
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            stack.enter_context(_fresh_warnings())
            stack.enter_context(_fresh_root_logger())
            os.chdir(cwd)
            sys.argv = [str(PROJECT_ROOT / 'dml_basicsr' / '__main__.py'), *args]
            try:
                code = main(list(args))
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code
                else:  # sys.exit('message'): printed to stderr, status 1
                    print(e.code, file=sys.stderr)
                    code = 1
    except BaseException:
        # Shown by pytest under "Captured stdout/stderr call" with the exception's traceback.
        sys.stdout.write(out.getvalue() + ''.join(fd_out))
        sys.stderr.write(err.getvalue() + ''.join(fd_err))
        raise
    return subprocess.CompletedProcess(['basicsr', *args], 0 if code is None else code,
                                       out.getvalue() + ''.join(fd_out), err.getvalue() + ''.join(fd_err))

