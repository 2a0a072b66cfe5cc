"""Running snakemake for the benchmarks, and reading what it reports: job counts, shell
commands, benchmark records, and the tables it wrote."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from shrinksim import design
from shrinksim.bench import REPO, python_env


@dataclass(frozen=True)
class Run:
    """A finished child process: wall seconds, peak RSS (MB) of its largest process, output."""

    seconds: float
    peak_mb: float
    output: str


def run(cmd: Sequence[str], cwd: Path) -> Run:
    """Run ``cmd`` in ``cwd``; peak RSS is the largest of it and its waited-for descendants."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=python_env(), stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(line[:300] for line in text.splitlines()[-40:])
        raise RuntimeError(f"{' '.join(cmd[:4])} failed in {cwd}:\n{tail}")
    return Run(seconds, usage.ru_maxrss / 1024, text)


def snakemake(folder: Path, configfile: Path, cache_dir: Path, *extra: str) -> Run:
    """``snakemake`` in ``folder`` with ``configfile`` merged over config.yaml."""
    exe = str(Path(sys.executable).parent / "snakemake")
    config = ["--config", f"cache_dir={cache_dir}"]
    return run([exe, "--configfile", str(configfile), *extra, *config], folder)


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from snakemake's ``Job stats`` table (``total`` included)."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Job stats:"):
            for row in lines[i + 3 :]:
                match = re.fullmatch(r"(\S+)\s+(\d+)", row.strip())
                if not match:
                    break
                counts[match[1]] = int(match[2])
            break
    return counts


def longest_command(output: str) -> tuple[str, int]:
    """The rule and length (characters) of the longest shell command snakemake printed
    (``-p``: a ``Shell command:`` line after each job's ``rule NAME:`` line)."""
    rule, best = "", ("", 0)
    for line in output.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("Shell command: "):
            length = len(line) - len("Shell command: ")
            if length > best[1]:
                best = (rule, length)
    return best


@dataclass(frozen=True)
class JobRecord:
    """A job's Snakemake benchmark record: wall seconds, and the peaks (MB) of the summed RSS
    and PSS of its processes (PSS splits pages that forked workers share; RSS counts them
    once per process). Snakemake samples every 0.5 s for 15 s, then every 30 s."""

    seconds: float
    rss_mb: float
    pss_mb: float


def rule_benchmarks(results: Path, rules: Sequence[str]) -> dict[str, JobRecord]:
    """The benchmark record of each of ``rules`` (rules without wildcards) that has one."""
    out = {}
    for rule in rules:
        path = results / design.BENCHMARK.format(job=rule)
        if path.exists():
            row = pd.read_csv(path, sep="\t").iloc[0]
            mb = pd.to_numeric(row[["max_rss", "max_pss"]], errors="coerce")
            out[rule] = JobRecord(float(row["s"]), float(mb["max_rss"]), float(mb["max_pss"]))
    return out


def log_tails(results: Path, rules: Sequence[str], lines: int = 20) -> str:
    """The last ``lines`` lines of each of ``rules``' logs (rules without wildcards)."""
    out = []
    for rule in rules:
        path = results / design.LOG.format(job=rule)
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        out.append(f"--- {path}: " + ("\n".join(text) if path.exists() else "missing"))
    return "\n".join(out)


def summary_mb(results: Path) -> float:
    """In-memory (Arrow) size, MB, of the study's single-file summary tables: what a reduce
    that holds one row per fit needs at least. Read a column at a time."""
    total = 0
    for path in (results / "summary").glob("*.parquet"):
        file = pq.ParquetFile(path)
        total += sum(file.read([name]).nbytes for name in file.schema_arrow.names)
    return total / 2**20


def sources_digest() -> str:
    """A digest of the measured sources (the package but its benchmarks, the rules): a run
    whose sources changed while it ran (a shared checkout) mixes versions."""
    digest = hashlib.sha256()
    package = REPO / "src/shrinksim"
    files = [*package.rglob("*.py"), *(REPO / "workflow").rglob("*.smk")]
    for path in sorted(f for f in files if not f.is_relative_to(package / "bench")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
