"""Write files so that no reader ever sees half of one: the one way this series writes anything it later trusts.

Downloads, converted IR, INT8 IR, stamps and the workshop kit all go through `staged_files`:
the data is written into a temporary folder beside its destination and renamed into place
(an atomic rename on one file system) only when the whole block succeeded.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def staged_files(destination: str | os.PathLike, names: list[str], prefix: str = ".staging-"):
    """Yield temporary paths for ``names`` in a folder inside ``destination``; move them all into place on success.

    The files are moved in the order given (put .bin before .xml, a stamp last), each with
    an atomic rename; on an exception nothing is moved and the temporary folder is removed.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination, prefix=prefix) as tmp:
        staged = [Path(tmp) / name for name in names]
        yield staged
        for path in staged:
            path.replace(destination / path.name)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    with staged_files(path.parent, [path.name], prefix=".writing-") as (staged,):
        staged.write_text(text)
