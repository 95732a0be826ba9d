"""Writing files whole or not at all.

A file that a crash, a full disk or Ctrl-C leaves half-written is worse than
no file: the next run would read it as if it were good. So every file this
project writes is first written under a temporary name in the same folder and
then renamed, which replaces the target in one step.
"""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    The temporary name keeps the suffix of ``path`` (``np.savez`` and
    ``savefig`` choose their format from it). If the body raises, the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(handle)
    os.chmod(temporary, usual_mode(0o666))  # mkstemp made it private (0600)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def usual_mode(mode):
    """``mode`` less the process's umask: what open() or mkdir() would give."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def write_bytes(path, data):
    """Write ``data`` to ``path`` whole or not at all."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` whole or not at all."""
    write_bytes(path, text.encode("utf-8"))
