"""Output files that never carry their final name half written.

:class:`AtomicOutput` opens a temporary file beside the target (same folder, so the rename
stays on one file system) when it is created — which is also the check that the target can
be written at all, made before any input is read. :meth:`AtomicOutput.commit` renames it into
place; :meth:`AtomicOutput.discard` (a failed or refused run) removes it. A target that is no
regular file (``/dev/stdout``, ``/dev/full``, a FIFO) is written directly: renaming over a
device would replace the device.

:class:`GuardedStream` turns a write error of an output (``ENOSPC``, ``EIO``…) into an
:class:`OutputError` with one line for the user; ``EPIPE`` stays a ``BrokenPipeError`` (the
reader went away: not an error for a command-line filter).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from typing import BinaryIO, TextIO, cast


class OutputError(Exception):
    """An output that cannot be written. Its message is one line for the user."""


def _why(err: OSError) -> str:
    return err.strerror or str(err)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same inode (through symlinks and hard links),
    or, when one does not exist yet, the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


class GuardedStream(io.TextIOBase):
    """A text stream whose write errors are :class:`OutputError` (``label`` names it)."""

    def __init__(self, stream: TextIO, label: str) -> None:
        super().__init__()
        self.stream = stream
        self.label = label

    def _fail(self, err: OSError) -> OutputError:
        return OutputError(f"cannot write to {self.label}: {_why(err)}")

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as err:
            raise self._fail(err) from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            raise self._fail(err) from None

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True


def guarded(stream: TextIO, label: str) -> TextIO:
    """``stream`` as a :class:`GuardedStream`, typed as the text stream it stands for."""
    return cast(TextIO, GuardedStream(stream, label))


class AtomicOutput:
    """One output file: written under a temporary name, renamed to ``path`` by :meth:`commit`.

    Raises :class:`OutputError` at once when ``path`` cannot be written (a missing folder, a
    folder, a file the user may not write, a folder where no file can be made).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.temp: str | None = None
        self._stream: TextIO | BinaryIO | None = None
        self._fd: int | None = None
        target = path
        try:
            st: os.stat_result | None = os.stat(path)  # (through symlinks)
        except FileNotFoundError:
            st = None
        except NotADirectoryError:
            raise OutputError(f"{path}: not a folder: {os.path.dirname(target)}") from None
        except OSError as err:
            raise OutputError(f"{path}: {_why(err)}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path}: is a folder")
        if st is not None and not stat.S_ISREG(st.st_mode):
            # a device or a FIFO (/dev/stdout, /dev/full): written in place
            self.target = path
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            except OSError as err:
                raise OutputError(f"{path}: cannot write: {_why(err)}") from None
            return
        if os.path.islink(path):  # the file a symlink names is replaced, the link stays
            target = os.path.realpath(path)
        self.target = target
        folder = os.path.dirname(target) or "."
        if not os.path.isdir(folder):
            what = "not a folder" if os.path.exists(folder) else "no such folder"
            raise OutputError(f"{path}: {what}: {folder}")
        if st is not None and not os.access(target, os.W_OK):
            raise OutputError(f"{path}: permission denied")
        try:
            fd, temp = tempfile.mkstemp(
                prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder
            )
        except OSError as err:
            raise OutputError(f"{path}: cannot write: {_why(err)}") from None
        self._fd, self.temp = fd, temp
        try:
            if st is not None:  # keep the replaced file's mode (and owner, where allowed)
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
                with contextlib.suppress(OSError):
                    os.fchown(fd, st.st_uid, st.st_gid)
            else:
                os.fchmod(fd, 0o666 & ~_umask())
        except OSError:
            pass

    @property
    def write_path(self) -> str:
        """The path a writer that opens files itself (Parquet) writes to."""
        return self.temp if self.temp is not None else self.target

    def text(self) -> TextIO:
        """The file as a text stream (UTF-8, no newline translation), guarded."""
        assert self._fd is not None and self._stream is None
        stream = open(self._fd, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._stream = stream
        self._fd = None
        return guarded(stream, self.path)

    def release(self) -> None:
        """Close the descriptor for a writer that opens :attr:`write_path` itself."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError as err:
                raise OutputError(f"cannot write to {self.path}: {_why(err)}") from None
        self.release()

    def commit(self) -> None:
        """Close, and give the file its final name."""
        self._close()
        if self.temp is not None:
            try:
                os.replace(self.temp, self.target)
            except OSError as err:
                raise OutputError(f"cannot write to {self.path}: {_why(err)}") from None
            self.temp = None

    def discard(self) -> None:
        """Close and remove the temporary file (the target is left as it was)."""
        with contextlib.suppress(OutputError):
            self._close()
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = None
