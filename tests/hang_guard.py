"""A time limit for tests of inputs that could hang (a FIFO, a shared object graph): a regression fails the test
instead of stopping the suite."""
import contextlib
import signal


class StillRunning(BaseException):
    """Raised into a block that ran past its limit; a BaseException, so that no ``except Exception`` (or OSError, as
    an interrupted open of a FIFO would be) in the code under test turns it into an ordinary error."""


@contextlib.contextmanager
def ends_within(seconds):
    """The block must end within ``seconds`` (whole seconds): SIGALRM interrupts it, even in a blocking ``open`` of
    a FIFO, with :class:`StillRunning`. Main thread only (where pytest runs the tests)."""
    def interrupt(signum, frame):
        raise StillRunning(f'still running after {seconds} s: it blocks or loops on an input it should refuse')

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
