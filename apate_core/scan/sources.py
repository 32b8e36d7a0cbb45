"""What ``apate scan SOURCE...`` means by a source: a file, a folder (recursive), a glob pattern or ``@LIST``.

* a file is taken as it is, whatever its name (hidden or not): intake decides whether it is media;
* a folder is walked recursively; hidden files and folders (names starting with ``.``) are skipped, and so is
  the scan's own output folder, so that scanning ``.`` twice does not scan the first run's report;
* a pattern with ``*``, ``?`` or ``[`` is a glob (``**`` crosses folders); hidden names match only when the
  pattern spells the dot; folders it matches are walked as above;
* ``@LIST`` reads LIST: one source per line (file, folder or glob; no nested lists), blank lines and lines
  starting with ``#`` ignored, relative entries taken from LIST's folder. An entry that matches nothing is not a
  refusal: it becomes an unreadable row ("no such file"), because a long list with one stale line should not
  stop a scan of thousands of files.

A source on the command line that does not exist, or a pattern that matches nothing, is refused (a typo should
not quietly scan less). Files come back sorted and de-duplicated by resolved path.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from ..errors import InputRefused

GLOB_CHARS = "*?["
LIST_PREFIX = "@"
ACCEPTED = "files, folders (scanned recursively), glob patterns such as 'photos/**/*.jpg', or @LIST (a text file " \
           "with one of these per line)"


@dataclass
class Expansion:
    """The files a scan covers (resolved, sorted, unique) and list-file entries that matched nothing."""

    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # as written in the list file, for the unreadable rows


def is_glob(text: str) -> bool:
    return any(char in text for char in GLOB_CHARS)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def walk_folder(folder: Path, exclude: Optional[Path] = None) -> Iterator[Path]:
    """Every non-hidden file under ``folder``, recursively, leaving out ``exclude`` (a resolved folder)."""
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = [d for d in dirs if not _hidden(d) and (exclude is None or (here / d).resolve() != exclude)]
        for name in files:
            if not _hidden(name):
                yield here / name


def _expand_one(source: str, base: Path, exclude: Optional[Path]) -> list[Path]:
    """The files one source stands for (empty when it matches nothing)."""
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = base / path
    if path.is_file():
        return [path]
    if path.is_dir():
        return list(walk_folder(path, exclude))
    if not is_glob(source):
        return []
    found: list[Path] = []
    for match in sorted(glob.glob(str(path), recursive=True)):
        match_path = Path(match)
        if match_path.is_dir():
            found.extend(walk_folder(match_path, exclude))
        elif match_path.is_file():
            found.append(match_path)
    return found


def read_list_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputRefused(f"No such list file: {path}", accepted=ACCEPTED) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputRefused(f"The list file {path} cannot be read ({exc})", accepted="a UTF-8 text file, one path "
                                                                                  "per line") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def expand_sources(sources: Iterable[str], *, exclude: Optional[Path] = None, cwd: Optional[Path] = None) -> Expansion:
    """Expand command-line sources; refuse a missing path or an empty match, and a scan with no file at all."""
    sources = list(sources)
    if not sources:
        raise InputRefused("No source given", accepted=ACCEPTED)
    cwd = cwd or Path.cwd()
    exclude = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    missing: list[str] = []
    for source in sources:
        if source.startswith(LIST_PREFIX) and len(source) > 1:
            list_path = Path(source[1:]).expanduser()
            list_path = list_path if list_path.is_absolute() else cwd / list_path
            for entry in read_list_file(list_path):
                if entry.startswith(LIST_PREFIX):
                    raise InputRefused(f"{list_path} lists another list ({entry})",
                                       accepted="files, folders or glob patterns in a list file")
                matched = _expand_one(entry, list_path.parent, exclude)
                if matched:
                    found.extend(matched)
                else:
                    missing.append(entry)
            continue
        matched = _expand_one(source, cwd, exclude)
        if not matched:
            if (cwd / Path(source).expanduser()).is_dir():
                continue  # an empty folder is not a typo; only a scan with no file at all is refused
            what = f"No file matches {source!r}" if is_glob(source) else f"No such file or folder: {source}"
            raise InputRefused(what, accepted=ACCEPTED)
        found.extend(matched)
    resolved = {path.resolve() for path in found}
    if exclude is not None:  # a glob such as 'dir/**' reaches into the output folder without walking it
        resolved = {path for path in resolved if exclude not in path.parents}
    unique = sorted(resolved)
    if not unique and not missing:
        raise InputRefused(f"No file found in {', '.join(sources)} (hidden files and folders are skipped)",
                           accepted=ACCEPTED)
    return Expansion(unique, sorted(set(missing)))
