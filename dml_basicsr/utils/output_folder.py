"""Output folders that never touch their inputs and have one writer at a time.

* :func:`check_targets`: every path a command will write or delete inside its output folder is checked on its
  resolved path before anything is written: none of them is a symbolic link (a command never writes or deletes
  through a link) or anything but a regular file (a folder, a FIFO), none of them resolves to an input, and the
  output folder does not overlap an input (the same folder, the input inside a written folder or anywhere inside
  the output, the output inside the input). The inputs are the files a command actually reads (each resolved with
  ``os.path.realpath``, so a link among them counts as the file it leads to) and the folders it reads them from.
* :func:`output_lock`: one writer per output folder, an exclusive ``fcntl.flock`` on the folder itself, held while
  the command writes. The kernel drops the lock when its process ends, also by ``kill -9``: a killed run never
  leaves a stuck lock, and no lock file is written.
* :class:`OutputFolder`: the folder a command writes its own files into (pictures, tables, records): it neither
  holds nor lies inside an input, its file names are single path components, it never writes through a link and it
  writes each file whole; :func:`check_output_file` for a single output file.
"""
import contextlib
import fcntl
import os
import shutil
import stat


class OutputFolderError(ValueError):
    """The output folder overlaps an input, is written by another run, or holds files this command did not write;
    the message says which."""


def _inside(path, folder):
    """Whether the real path ``path`` is the real path ``folder`` or inside it."""
    return os.path.commonpath([path, folder]) == folder


def real_inputs(paths):
    """The resolved paths (``os.path.realpath``: through every link) of the files and folders ``paths`` a command
    reads, without empty entries and repeats: what an output is compared against."""
    return list(dict.fromkeys(os.path.realpath(os.fspath(p)) for p in paths if p))


def check_not_an_input(path, real_input_set, what='the output'):
    """OutputFolderError if the file ``path``, resolved, is in ``real_input_set`` (the set of :func:`real_inputs`
    of what the command reads, resolved once): writing or deleting it would destroy what is read."""
    real = os.path.realpath(path)
    if real in real_input_set:
        raise OutputFolderError(f'{what} {path} is {real}, which this command reads: an output never replaces an '
                                'input; choose another output')


def check_regular_or_absent(path, what='the output'):
    """OutputFolderError if something other than a regular file or a symbolic link (a folder, a FIFO, a device)
    is at ``path``: a file is written there by replacing it whole, which only a file (or a link itself) allows."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # absent, or below a file: the folder's own check says so
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise OutputFolderError(f'{what} {path} exists and is not a regular file: this command writes a file there; '
                                'move it away or choose another output folder')


def _overlap_reason(out, src, target_folders):
    """How the real output folder ``out`` overlaps the real input ``src`` ('' if not)."""
    if src == out:
        return 'the same folder'
    if any(_inside(src, os.path.join(out, name)) for name in target_folders):
        return f"the input is the output's {'/ or '.join(target_folders)}/, or inside it"
    if _inside(out, src):
        return 'the output is inside the input'
    if _inside(src, out):
        return 'the output holds the input'
    return ''


def check_targets(output_dir, targets, inputs, target_folders=(), files=()):
    """OutputFolderError if writing or deleting ``targets`` (names inside ``output_dir``; those of
    ``target_folders`` are folders whose files are written or deleted; ``files``, paths relative to ``output_dir``
    such as ``HR/a.png``, are files replaced whole, a link there itself) could touch ``inputs`` (the files and
    folders read) or anything outside ``output_dir``: a target that is a symbolic link, a target or file that is
    not a regular file (a folder, a FIFO) or whose resolved path is an input, an output folder that is an input,
    lies inside one or holds one."""
    out = os.path.realpath(output_dir)
    for name in (*target_folders, *targets):
        path = os.path.join(output_dir, name)
        if os.path.islink(path):
            raise OutputFolderError(f'{path} is a symbolic link (to {os.path.realpath(path)}): this command never '
                                    'writes or deletes through a link; remove the link or choose another output '
                                    'folder')
    for name in target_folders:
        path = os.path.join(output_dir, name)
        if os.path.lexists(path) and not os.path.isdir(path):
            raise OutputFolderError(f'{path} exists and is not a folder; move it away or choose another output folder')
    real_input_set = set()
    for input_path in inputs:
        real = os.path.realpath(input_path)
        reason = _overlap_reason(out, real, target_folders)
        if reason:
            raise OutputFolderError(f'output {output_dir} overlaps input {input_path} ({reason}): the outputs would '
                                    'overwrite or mix with the source files; choose an output folder outside the '
                                    'input')
        real_input_set.add(real)
    for name in (*targets, *files):
        path = os.path.join(output_dir, name)
        check_regular_or_absent(path)
        check_not_an_input(path, real_input_set)


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
    lock = os.path.join(parent, f'.{name}.lock')
    refuse_link(lock, 'the run lock')
    with _flock(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                f'{os.path.join(parent, name)} is being written by another {command} now (one run of a name at a '
                'time); wait for it to finish, or give this run another name'):
        yield


def overlap(output, inputs):
    """The first input (a file or folder) that the real path ``output`` holds, lies in or is, and how; or None."""
    out = os.path.realpath(output)
    for input_path in inputs:
        src = os.path.realpath(input_path)
        if src == out:
            return input_path, 'is the input'
        if _inside(src, out):
            return input_path, 'holds the input'
        if _inside(out, src):
            return input_path, 'lies inside the input'
    return None


def is_name_fragment(text):
    """Whether the string ``text`` can be part of one file name: no path separator, no ``..``, no NUL (so not an
    absolute path either)."""
    return isinstance(text, str) and not any(part in text for part in ('/', '\\', '..', '\0'))


def refuse_link(path, what):
    """OutputFolderError if ``path`` is a symbolic link: nothing is written through one."""
    if os.path.islink(path):
        raise OutputFolderError(f'{what} {path} is a symbolic link (to {os.path.realpath(path)}): this command never '
                                'writes through a link')


def check_output_file(path, inputs, what='--output'):
    """OutputFolderError if writing the file ``path`` could touch an input: it is a symbolic link, something other
    than a regular file, is (resolved) one of ``inputs`` (files or folders, resolved) or lies inside one."""
    refuse_link(path, what)
    found = overlap(path, inputs)
    if found:
        raise OutputFolderError(f'{what} {path} {found[1]} {found[0]}: an output never goes where what it reads '
                                'is; write it elsewhere')
    check_regular_or_absent(path, what)


def folders_down(root, path, what):
    """``root`` and every folder below it down to ``path`` (``root`` or a folder inside it), in that order;
    OutputFolderError if ``path`` lies outside ``root``."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise OutputFolderError(f'{what} {path} lies outside its run folder {root}: nothing is written there')
    parts = [] if rel == os.curdir else rel.split(os.sep)
    return [os.path.join(root, *parts[:depth]) for depth in range(len(parts) + 1)]


def check_real_folders(path, root, what):
    """OutputFolderError unless every folder from ``root`` down to ``path`` is a real folder (or absent), none a
    symbolic link or a file, and ``path`` resolves to where it lies inside ``root`` (no link, no ``..`` through one)."""
    for folder in folders_down(root, path, what):
        refuse_link(folder, what)
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise OutputFolderError(f'{what} {folder} exists and is not a folder')
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if os.path.realpath(path) != os.path.normpath(os.path.join(os.path.realpath(root), rel)):
        raise OutputFolderError(f'{what} {path} resolves to {os.path.realpath(path)}, outside its place in {root}: '
                                'this command never writes through a link')


def make_real_folders(path, root, what):
    """Create ``root`` (through the folders above it, as they are) and every folder below it down to ``path``, one at
    a time without following a link: OutputFolderError if one of them is (or became) a link or a file."""
    os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
    for folder in folders_down(root, path, what):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        refuse_link(folder, what)
        if not os.path.isdir(folder):
            raise OutputFolderError(f'{what} {folder} exists and is not a folder')


def first_link(path, inside=True):
    """``path`` if it is a symbolic link, else (``inside``) the first link anywhere below it, walked in sorted order
    without following links; None if there is none (or ``path`` is absent)."""
    if os.path.islink(path):
        return path
    if not inside:
        return None
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            if os.path.islink(os.path.join(folder, name)):
                return os.path.join(folder, name)
    return None


def check_run_folder(path, what, inside=True):
    """OutputFolderError naming the first symbolic link at ``path`` or (``inside``) anywhere below it (``what`` says
    what the folder is): BasicSR's own writers (its log, checkpoints, pictures) would write through it."""
    link = first_link(path, inside)
    if link is None:
        return
    place = f'{what} {path} is a symbolic link' if link == path else f'{link} is a symbolic link inside {what} {path}'
    raise OutputFolderError(f'{place} (to {os.path.realpath(link)}): the run writes there and never through a link; '
                            'remove the link, or give the run another name')


class OutputFolder:
    """The folder a command writes its files into, each through :meth:`write_bytes` (or its wrappers).

    Checked when made, before anything is written: the folder is no symbolic link, and it neither holds, is, nor
    lies inside any of ``inputs`` (resolved paths). Each file name is one path component (no separator, not
    ``.``/``..``: nothing lands outside the folder), a target that is a symbolic link is refused (never written
    through), and every file is written whole under a temporary name, then renamed (:meth:`open_atomic` streams
    one). Deleting is as confined: :meth:`remove` deletes a regular file directly inside the folder (a link itself,
    never what it points to), :meth:`remove_tree` a real folder there, never one behind a link.

    ``root`` (optional): the folder the command owns (``experiments/<name>``, ``results/<name>``), holding ``path``:
    then every folder from ``root`` down to ``path`` is a real folder inside ``root``, none a link
    (:func:`check_real_folders`), and the missing ones are created without following links."""

    def __init__(self, path, inputs=(), what='--output', root=None):
        self.path, self.what, self.root, self.inputs = path, what, root, set(real_inputs(inputs))
        refuse_link(path, what)
        if root is not None:
            check_real_folders(path, root, what)
        if os.path.exists(path) and not os.path.isdir(path):
            raise OutputFolderError(f'{what} {path} exists and is not a folder')
        found = overlap(path, inputs)
        if found:
            raise OutputFolderError(f'{what} {path} {found[1]} {found[0]}: outputs never go where what the command '
                                    'reads is; choose another folder')

    def entry(self, name):
        """The path of the entry ``name`` directly inside the folder (a link there is not refused: see
        :meth:`remove`); OutputFolderError if ``name`` is not one plain path component."""
        if not isinstance(name, str) or not name or name in ('.', '..') or os.sep in name or (
                os.altsep and os.altsep in name) or '\0' in name:
            raise OutputFolderError(f'{name!r}: not a file name inside {self.path} (one path component)')
        return os.path.join(self.path, name)

    def target(self, name):
        """The path of the file ``name`` inside the folder; OutputFolderError if ``name`` is not one plain path
        component, the target is a symbolic link or, resolved, one of the inputs."""
        path = self.entry(name)
        refuse_link(path, 'the output')
        check_not_an_input(path, self.inputs)
        return path

    def file_target(self, name):
        """:meth:`target`, also refused where something other than a regular file (a folder, a FIFO) is there."""
        path = self.target(name)
        check_regular_or_absent(path)
        return path

    def check_targets(self, names):
        """:meth:`file_target` of every name, before the first is written."""
        return [self.file_target(name) for name in names]

    def make(self):
        """Create the folder (with ``root``: each missing folder below it, never through a link)."""
        if self.root is None:
            os.makedirs(self.path, exist_ok=True)
        else:
            make_real_folders(self.path, self.root, self.what)

    @contextlib.contextmanager
    def open_atomic(self, name):
        """A binary file to stream the file ``name`` into (e.g. ``torch.save``): it replaces ``name`` whole when the
        block ends without an error, never through a link (:func:`~.atomic_write.atomic_file`)."""
        from .atomic_write import atomic_file  # here: the lock functions above import nothing of the package

        path = self.file_target(name)
        self.make()
        with atomic_file(path) as f:
            yield f

    def write_bytes(self, name, data):
        with self.open_atomic(name) as f:
            f.write(data)
        return os.path.join(self.path, name)

    def write_text(self, name, text):
        return self.write_bytes(name, text.encode('utf-8'))

    def write_png(self, name, picture):
        """A uint8 picture (H, W[, C], BGR) as PNG; OSError if OpenCV cannot encode it."""
        import cv2

        ok, encoded = cv2.imencode('.png', picture)
        if not ok:
            raise OSError(f'{os.path.join(self.path, name)}: cannot encode the picture')
        return self.write_bytes(name, encoded.tobytes())

    def remove(self, name):
        """Delete the file ``name`` directly inside the folder: a regular file, or a symbolic link itself (never what
        it points to); nothing if there is none. OutputFolderError if it is anything else (a folder, a FIFO)."""
        path = self.entry(name)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise OutputFolderError(f'{path} is not a regular file: this command deletes only files it wrote; move '
                                    'it away')
        os.remove(path)  # unlinks the name: a link goes, its target stays

    def remove_tree(self, name, ignore_errors=False):
        """Delete the real folder ``name`` directly inside the folder with everything in it (``shutil.rmtree``
        removes links inside, never what they point to); nothing if there is none. OutputFolderError if ``name`` is
        a symbolic link or not a folder."""
        path = self.entry(name)
        refuse_link(path, 'the folder to delete')
        if not os.path.lexists(path):
            return
        if not os.path.isdir(path):
            raise OutputFolderError(f'{path} is not a folder: this command deletes only folders it wrote')
        shutil.rmtree(path, ignore_errors=ignore_errors)

    def remove_partial_files(self):
        """Delete the temporary files (:func:`~.atomic_write.tmp_path`) that interrupted writes left directly in the
        folder (regular files or links themselves; anything else is left), if the folder exists."""
        from .atomic_write import TMP_PREFIX, TMP_SUFFIX

        if not os.path.isdir(self.path):
            return
        for name in sorted(os.listdir(self.path)):
            if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                with contextlib.suppress(OSError, OutputFolderError):
                    self.remove(name)

    def new_folder(self, name, what):
        """Create the folder ``name`` directly inside this one and return it as an OutputFolder (``what`` names it in
        errors); OutputFolderError if a link is there, FileExistsError if anything else is."""
        path = self.target(name)
        self.make()
        os.mkdir(path)
        return OutputFolder(path, what=what)

    def rename(self, name, new_name):
        """Rename the entry ``name`` of the folder to ``new_name`` (both directly inside it); OutputFolderError if
        either is a symbolic link or ``new_name`` exists (nothing is replaced)."""
        source, path = self.target(name), self.target(new_name)
        if os.path.lexists(path):
            raise OutputFolderError(f'{path} exists; remove it or choose another output folder')
        os.rename(source, path)
        return path


def output_file(path, what='--output'):
    """(the :class:`OutputFolder` of the folder of the single output file ``path``, the file's name), checked before
    anything is written: the file is no symbolic link, its name one path component. The folder is taken at its real
    path (where the user's path leads, as for the parent of a run folder) and may hold inputs beside the file
    (:func:`check_output_file` checks the file against them)."""
    folder = OutputFolder(os.path.realpath(os.path.dirname(os.path.abspath(path))), what=f'the folder of {what}')
    name = os.path.basename(path)
    folder.target(name)
    return folder, name
