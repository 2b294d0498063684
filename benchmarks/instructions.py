"""Instructions per request cycle, ours against h11, counted by valgrind's callgrind.

Wall and CPU time on a shared VM vary by 10-25 % between runs; instruction counts do not,
so this is the measurement to compare two versions of the core. Each variant runs the
keep-alive loop of ``parser.py`` twice under callgrind, for 1 and for 1 + N iterations,
in a child interpreter with a fixed hash seed; the difference divided by N is the cost of
one cycle (imports, start-up and warm-up cancel out).

Needs valgrind (``apt-get install -y valgrind``). Run with the project's interpreter:
``.venv/bin/python benchmarks/instructions.py [--iterations 500]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASE_NAMES = {"get8": 0, "get20": 1, "post": 2}
VARIANTS = ("ours", "h11")

# The child: warm the variant up, then run it ``n`` times.
CHILD = """
import sys, time
sys.path.insert(0, {here!r})
import parser as bench
case = bench.CASES[{case}]
run = {{"ours": bench.ours_keepalive, "h11": bench.h11_keepalive}}[{variant!r}]
run(case.raw, 50, time.perf_counter)
run(case.raw, {n}, time.perf_counter)
"""

REFS_RE = re.compile(r"refs:\s+([\d,]+)")


def instructions(variant: str, case: int, n: int, workdir: Path) -> int:
    """Total instructions callgrind counts for the child running ``n`` cycles."""
    script = workdir / f"{variant}-{case}-{n}.py"
    script.write_text(CHILD.format(here=str(HERE), case=case, variant=variant, n=n))
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={workdir / 'callgrind.out'}",
            sys.executable,
            str(script),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    match = REFS_RE.search(done.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(match.group(1).replace(",", ""))


def per_cycle(variant: str, case: int, iterations: int, workdir: Path) -> int:
    base = instructions(variant, case, 1, workdir)
    total = instructions(variant, case, 1 + iterations, workdir)
    return (total - base) // iterations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500, help="cycles counted (500)")
    parser.add_argument(
        "--case",
        action="append",
        choices=sorted(CASE_NAMES),
        help="run only these requests (repeatable; default all)",
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    import parser as bench  # benchmarks/parser.py, for the case names

    names = args.case or list(CASE_NAMES)
    print("| request | ours instr/cycle | h11 instr/cycle | h11/ours |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            case = CASE_NAMES[name]
            ours, h11 = (per_cycle(v, case, args.iterations, Path(tmp)) for v in VARIANTS)
            label = bench.CASES[case].name
            print(f"| {label} | {ours:,} | {h11:,} | {h11 / ours:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
