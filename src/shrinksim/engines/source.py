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


def program_source(stan_file: str | Path) -> str:
    """The text of a Stan program with its ``#include`` lines expanded (one level)."""
    path = Path(stan_file)
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#include"):
            included = path.parent / line.split(maxsplit=1)[1].strip().strip("<>\"'")
            lines.append(included.read_text(encoding="utf-8").rstrip("\n"))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
