"""Stan source text: the programs in ``stan/`` with their ``#include`` lines expanded.

Both engines compile the text :func:`program_source` returns, so this small expander is used
for CmdStan too, although stanc could resolve the includes itself
(``stanc_options={"include-paths": [...]}`` in cmdstanpy). That is the simplest choice:

* PyStan's ``stan.build`` takes program text only, with no include path, so the expander
  is needed anyway; and httpstan keys its cached build by that text, so it must stay exactly
  as it is (same text: no recompile, same draws).
* One expanded text means both engines compile the very same program, and
  :attr:`CompiledModel.code <shrinksim.engines.base.CompiledModel.code>` (and its CmdStan
  ``sha256``) is exactly what was compiled, with no dependency on files beside it.
* cmdstanpy builds the executable next to the ``.stan`` file, so the program is copied to the
  model directory anyway; with its includes expanded, nothing else needs copying.
"""

from __future__ import annotations

from pathlib import Path


def _included(path: Path, line: str) -> Path | None:
    """The file an ``#include`` line names (beside ``path``), or None for any other line."""
    if not line.strip().startswith("#include"):
        return None
    return path.parent / line.split(maxsplit=1)[1].strip().strip("<>\"'")


def included_files(stan_file: str | Path) -> list[Path]:
    """The files a Stan program's ``#include`` lines name, in order."""
    path = Path(stan_file)
    lines = path.read_text(encoding="utf-8").splitlines()
    return [found for line in lines if (found := _included(path, line)) is not None]


def program_source(stan_file: str | Path) -> str:
    """The text of a Stan program with its ``#include`` lines expanded (one level)."""
    path = Path(stan_file)
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        included = _included(path, line)
        lines.append(line if included is None else included.read_text("utf-8").rstrip("\n"))
    return "\n".join(lines) + "\n"
