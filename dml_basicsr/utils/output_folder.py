"""Output folders that never touch their inputs and have one writer at a time.

* :func:`check_targets`: every path a command will write or delete inside its output folder is checked on its
  resolved path before anything is written: none of them is a symbolic link (a command never writes or deletes
  through a link), and none of them, nor the output folder itself, overlaps an input (the same folder, the input
  inside a written folder, the output inside the input).
* :func:`output_lock`: one writer per output folder, an exclusive ``fcntl.flock`` on the folder itself, held while
  the command writes. The kernel drops the lock when its process ends, also by ``kill -9``: a killed run never
  leaves a stuck lock, and no lock file is written.
"""
import contextlib
import fcntl
import os

class OutputFolderError(ValueError):
    """The output folder overlaps an input, is written by another run, or holds files this command did not write;
    the message says which."""


def _inside(path, folder):
    """Whether the real path ``path`` is the real path ``folder`` or inside it."""
    return os.path.commonpath([path, folder]) == folder


def check_targets(output_dir, targets, inputs, target_folders=()):
    """OutputFolderError if writing or deleting ``targets`` (names inside ``output_dir``; those of
    ``target_folders`` are folders whose files are written or deleted) could touch ``inputs`` (paths) or anything
    outside ``output_dir``: a target that is a symbolic link, an output folder that is an input or inside one,
    an input inside a target folder."""
    out = os.path.realpath(output_dir)
    for name in (*target_folders, *targets):
        path = os.path.join(output_dir, name)
        if os.path.islink(path):
            raise OutputFolderError(f'{path} is a symbolic link (to {os.path.realpath(path)}): this command never '
                                    'writes or deletes through a link; remove the link or choose another output '
                                    'folder')
    for input_path in inputs:
        src = os.path.realpath(input_path)
        if src == out:
            reason = 'the same folder'
        elif any(_inside(src, os.path.join(out, name)) for name in target_folders):
            reason = f"the input is the output's {'/ or '.join(target_folders)}/, or inside it"
        elif _inside(out, src):
            reason = 'the output is inside the input'
        else:
            continue
        raise OutputFolderError(f'output {output_dir} overlaps input {input_path} ({reason}): the outputs would '
                                'overwrite or mix with the source files; choose an output folder outside the input')


@contextlib.contextmanager
def _flock(path, flags, refusal):
    """Hold ``fcntl.flock`` on the file or folder ``path`` (opened with ``flags``) for the block; OutputFolderError
    ``refusal`` if another process holds it. The kernel drops the lock when the holder ends, also by ``kill -9``."""
    fd = os.open(path, flags, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputFolderError(refusal) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(output_dir, command):
    """Create ``output_dir`` and hold an exclusive lock on it for the block; OutputFolderError if another process
    holds it (``command`` names what writes, e.g. 'basicsr synthesize'). The lock is on the folder itself: no lock
    file is written."""
    os.makedirs(output_dir, exist_ok=True)
    with _flock(output_dir, os.O_RDONLY | os.O_DIRECTORY,
                f'{output_dir} is being written by another {command} (run it into one output at a time); wait for '
                'that one to finish or choose another output folder'):
        yield


@contextlib.contextmanager
def run_lock(parent, name, command):
    """Hold the lock of the run ``name`` under ``parent`` (``experiments``, ``results``) for the block: the file
    ``<parent>/.<name>.lock`` (BasicSR renames ``<parent>/<name>`` itself when it archives an old run, so the folder
    cannot carry it); OutputFolderError if another process runs ``name`` there now."""
    os.makedirs(parent, exist_ok=True)
    with _flock(os.path.join(parent, f'.{name}.lock'), os.O_RDWR | os.O_CREAT,
                f'{os.path.join(parent, name)} is being written by another {command} now (one run of a name at a time); '
                'wait for it to finish, or give this run another name'):
        yield
