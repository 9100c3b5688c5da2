"""``python -m benchmarks [PART ...] [--quick] [--out DIR] [--into-results]``: run the benchmarks, write the results.

With no PART, every part but ``suite`` runs and, unless ``--quick`` or
``--out`` is given, benchmarks/RESULTS.md and benchmarks/retrieval.png are
regenerated. Any other run writes its report to ``--out`` (default
benchmarks/results/raw/, ignored by git), so a partial or quick run never
overwrites the committed results. ``suite`` runs the test suite and writes
benchmarks/SUITE.md.

``--into-results`` runs the parts named (full sizes) and puts each one's
section into benchmarks/RESULTS.md in place of its old one, with its rows of
the Goals table, and a line saying which command wrote it and when; the rest
of the file stays as its own run wrote it. (With ``--out DIR``, into
DIR/RESULTS.md instead; ``--quick`` is allowed only then, so quick figures
never reach the committed file.)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Before any Hugging Face import: the benchmarks use the packaged models and
# never wait on a network. Set HF_HUB_OFFLINE=0 to allow downloads (LFM2-700M).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
DEFAULT_PARTS = [
    "retrieval", "topk", "loop", "embedding", "generation", "memory",
    "chunking", "bm25", "evaluation", "injection", "scale", "large_input",
]
# Parts run on their own (minutes each), written to their own files: SUITE.md, ANSWERS.md;
# and parts not yet in the default run (updates: the lead's, vectordb: issue 19's).
ALL_PARTS = DEFAULT_PARTS + ["suite", "answers", "abstention", "updates", "vectordb"]
#: The parts whose section goes into ANSWERS.md (and, between markers, into RESULTS.md).
ANSWER_PARTS = ("answers", "abstention")


def _same_blas_kernel_for_faiss() -> None:
    """Re-run this command with ``OPENBLAS_CORETYPE`` set if faiss's OpenBLAS does not know this CPU.

    The faiss-cpu wheel bundles its own, older OpenBLAS. On a CPU newer than
    that copy, it falls back to a generic kernel (Prescott, SSE3) and faiss's
    BLAS path runs several times slower than it should: an unfair peer. So
    when its kernel differs from NumPy's, both are given NumPy's. A value set
    by the user is kept as it is.
    """
    if "OPENBLAS_CORETYPE" in os.environ or os.environ.get("_BENCH_REEXEC"):
        return
    try:
        import faiss  # noqa: F401  (loads faiss's OpenBLAS, so threadpoolctl can see it)
        import numpy  # noqa: F401
        import threadpoolctl
    except ImportError:
        return
    kernels = {}
    for pool in threadpoolctl.threadpool_info():
        if pool.get("internal_api") == "openblas":
            for package in ("numpy", "faiss"):
                if f"{package}" in pool.get("filepath", ""):
                    kernels[package] = pool.get("architecture")
    if kernels.get("numpy") and kernels.get("faiss") and kernels["numpy"] != kernels["faiss"]:
        print(f"faiss's own OpenBLAS chose the {kernels['faiss']} kernel, NumPy's {kernels['numpy']}: "
              f"running again with OPENBLAS_CORETYPE={kernels['numpy']} so that both use the same.", flush=True)
        env = dict(os.environ, OPENBLAS_CORETYPE=kernels["numpy"], _BENCH_REEXEC="1")
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help=f"any of {', '.join(ALL_PARTS)} (default: all but suite)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and fewer repeats (N up to 1e5): a minute or two, for development")
    parser.add_argument("--out", type=Path, help="folder for the report (default: see above)")
    parser.add_argument("--into-results", action="store_true",
                        help="replace these parts' sections (and their goals) in benchmarks/RESULTS.md, "
                             "or in OUT/RESULTS.md with --out")
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in ALL_PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(ALL_PARTS)}")
    parts = args.parts or DEFAULT_PARTS
    if args.into_results and args.quick and args.out is None:
        parser.error("--into-results with --quick needs --out DIR: quick figures never go into benchmarks/RESULTS.md")
    if args.quick and any(p in ANSWER_PARTS for p in parts) and args.out is None:
        args.out = HERE / "results" / "raw"  # a quick run never overwrites ANSWERS.md

    if "suite" not in parts:
        _same_blas_kernel_for_faiss()
    import importlib

    from . import retrieval
    from .common import load_average, machine_info
    from .report import render, render_suite, splice_into_results, write_answer_section

    # Each part is the module of the same name, imported only when it runs.
    modules = {}
    for part in parts:
        try:
            modules[part] = importlib.import_module(f"benchmarks.{part}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{part}":
                raise  # a library the part needs: its own message says which
            parser.error(f"part {part!r} is registered but benchmarks/{part}.py does not exist yet")
    official = not args.parts and not args.quick and args.out is None and not args.into_results
    if args.into_results:
        out = args.out or HERE  # where RESULTS.md and its plots are
    else:
        out = HERE if official else (args.out or HERE / "results" / "raw")
    raw = HERE / "results" / "raw" if out == HERE else out  # the JSON numbers: never committed
    for folder in (out, raw):
        folder.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))

    info = machine_info()
    print("Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    load_start = load_average()
    start = time.perf_counter()
    sections = []
    for part in parts:
        part_start = time.perf_counter()
        print(f"[{part}]", flush=True)
        section = modules[part].run(quick=args.quick)
        print(f"[{part}] {time.perf_counter() - part_start:.0f} s", flush=True)
        (raw / f"{part}.json").write_text(json.dumps(section.raw, indent=1, default=str))
        if part == "suite":
            (HERE / "SUITE.md").write_text(render_suite(section, command=command, info=info))
            print(f"wrote {HERE / 'SUITE.md'}")
        elif part in ANSWER_PARTS and not args.quick and args.out is None:
            write_answer_section(HERE, part, section, command=command, info=info)
            print(f"wrote the {part} section of {HERE / 'ANSWERS.md'} and {HERE / 'RESULTS.md'}")
        else:
            sections.append(section)
    wall = time.perf_counter() - start

    for section in sections:
        print()
        print(section.markdown())
    if not sections:
        return 0
    plot_name = None
    if any(s.title.startswith("1.") for s in sections):
        plot_name = "retrieval.png"
        retrieval.plot(next(s for s in sections if s.title.startswith("1.")), out / plot_name)
    from . import scale

    for section in sections:
        if section.title == scale.TITLE and "speed" in section.raw:
            scale.plot(section, out / "scale.png")
            section.tables.append("![recall@10 against ms per query, ours and FAISS's](scale.png)")
            print(f"wrote {out / 'scale.png'}")
    if args.into_results:
        target = out / "RESULTS.md"
        splice_into_results(target, sections, command=command, load=(load_start, load_average()), info=info)
        print(f"replaced the section(s) {', '.join(repr(s.title) for s in sections)} in {target}"
              + (f"; wrote {out / plot_name}" if plot_name else ""))
        _say_missed(sections)
        return 0
    text = render(sections, command=command, info=info, load=(load_start, load_average()), wall_s=wall,
                  plot_name=plot_name, suite_file=HERE / "SUITE.md" if official else None)
    (out / "RESULTS.md").write_text(text)
    print(f"wrote {out / 'RESULTS.md'}" + (f" and {out / plot_name}" if plot_name else "") + f" ({wall / 60:.1f} min)")
    _say_missed(sections)
    return 0


def _say_missed(sections: list) -> None:
    missed = [g.text for s in sections for g in s.goals if g.met is False]
    if missed:
        print("Goals missed:\n  " + "\n  ".join(missed))


if __name__ == "__main__":
    sys.exit(main())
