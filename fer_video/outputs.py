"""The output set of one video: which files it writes, their temporary names, and an all-or-nothing commit.

To add an output file, add one line to ``OUTPUT_SUFFIXES`` (key -> suffix after ``NAME``), write it to
``outputs.temp(key)`` in the pipeline; ``commit`` renames it into place (before the summary, which comes last
because it marks a complete result) and any failure removes it with the other temporaries.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType

from fer_video.errors import OutputError

SUMMARY = "summary"
OUTPUT_SUFFIXES = {
    "video": ".annotated.mp4",
    "csv": ".timeline.csv",
    "plot": ".timeline.png",
    "episodes": ".episodes.csv",
    "elan": ".eaf",
    SUMMARY: ".summary.json",
}


def output_paths(out_dir: Path, name: str) -> dict[str, Path]:
    """The final path of every registered output of ``name`` in ``out_dir``."""
    return {key: out_dir / f"{name}{suffix}" for key, suffix in OUTPUT_SUFFIXES.items()}


def hidden_path(out_dir: Path, name: str, label: str) -> Path:
    """The hidden temporary ``.NAME.LABEL.part`` in ``out_dir`` (every file of ``name`` that is not an output yet)."""
    return out_dir / f".{name}.{label}.part"


def unique_names(stems: list[str], fold_case: bool = False) -> list[str]:
    """One output name per stem: the stem itself, then ``STEM-2``, ``STEM-3``... for the repeats
    (``fold_case``: names that differ only in case count as repeats too)."""
    names: list[str] = []
    used: set[str] = set()
    for stem in stems:
        name, k = stem, 2
        while (name.lower() if fold_case else name) in used:
            name, k = f"{stem}-{k}", k + 1
        used.add(name.lower() if fold_case else name)
        names.append(name)
    return names


def os_error_reason(exc: OSError) -> str:
    """A short reason for an OSError in a one-line message: "disk full", else the OS's own words."""
    return "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc) or exc.__class__.__name__)


def prepare_output_folder(out_dir: Path) -> None:
    """Create ``out_dir`` and check it is writable, before any work (one clear error instead of one per file)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{out_dir}: output folder is a file") from None
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create output folder ({os_error_reason(exc)})") from None
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"{out_dir}: output folder is not writable")


class OutputSet:
    """Hands out temporary paths (hidden ``.NAME.SUFFIX.part`` files) and commits them by rename.

    Use as a context manager: leaving it by an exception removes every temporary; ``commit()`` renames the
    temporaries that were written to their final names, the summary last, and returns the final paths.
    """

    def __init__(self, out_dir: Path, name: str) -> None:
        self.out_dir = out_dir
        self.name = name
        self.final = output_paths(out_dir, name)
        self._temps = {key: p.with_name(f".{p.name}.part") for key, p in self.final.items()}
        self._scratch: list[Path] = []

    def temp(self, key: str) -> Path:
        """Where to write output ``key`` until the commit."""
        return self._temps[key]

    def scratch(self, label: str) -> Path:
        """A temporary that is never committed (e.g. the video before its audio is muxed); removed at the end."""
        path = hidden_path(self.out_dir, self.name, label)
        self._scratch.append(path)
        return path

    def commit(self) -> dict[str, Path]:
        """Rename every written temporary into place, the summary last; the final paths that exist."""
        for key in sorted(self._temps, key=lambda k: k == SUMMARY):  # stable: registration order, summary last
            if self._temps[key].exists():
                os.replace(self._temps[key], self.final[key])
        self.discard()  # scratch files left over
        return {k: p for k, p in self.final.items() if p.exists()}

    def discard(self) -> None:
        """Remove every temporary and scratch file (never a committed output)."""
        for p in [*self._temps.values(), *self._scratch]:
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.discard()
