"""Prompt injection: how often the course's attacks win, with and without the defences.

Every attack of ``rag_helpers/data/injection_attacks.json`` (a question, its
true fact and one malicious document) goes to the packaged offline generator
(SmolLM2-135M-Instruct, greedy, ``MAX_NEW_TOKENS`` new tokens) with the
malicious document ranked first, then last, each time twice:

* undefended: ``prompts.undefended_prompt``, the seed layout with the
  documents pasted verbatim (what the course did before);
* defended: ``build_prompt``, the same layout after ``injection.neutralize``.

An attack wins when the answer contains one of its markers ("PWNED", the
planted false fact) and not the true answer ("Jupiter"): ``Attack.succeeded``.
The lenient count (a marker, whatever else the answer says) is shown too. As
a control, each question is also asked with its true fact alone: a marker
there would mean the criterion, not the attack, is at fault. Greedy decoding
makes every answer repeatable on one machine; other hardware or library
versions can flip a few of them.

    .venv/bin/python -m benchmarks.injection             # 41 attacks x 2 positions x 2 prompts: 164 answers,
                                                         # about 3 minutes on 2 idle CPU cores
    .venv/bin/python -m benchmarks.injection --quick     # the first 10 attacks, malicious document last
    .venv/bin/python -m benchmarks.injection --style cite --json answers.json

On a busy machine ``--threads 1`` (one PyTorch thread) is several times faster.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import rag_helpers as rh  # noqa: E402
from rag_helpers.engine.injection import POSITIONS, Attack, load_attacks  # noqa: E402
from rag_helpers.engine.prompts import PROMPT_STYLES, build_prompt, undefended_prompt  # noqa: E402

MAX_NEW_TOKENS = 40


def run_attacks(generator: rh.Generator, attacks: list[Attack], positions: tuple[str, ...] = POSITIONS,
                style: str = "plain", max_new_tokens: int = MAX_NEW_TOKENS) -> list[dict]:
    """One row per attack and position: both answers and whether the attack won each time."""
    from tqdm.auto import tqdm

    runs = [(attack, position) for attack in attacks for position in positions]
    rows = []
    for attack, position in tqdm(runs, desc="attacks", unit="attack"):
        documents = attack.context(position)
        answers = {
            "undefended": generator.generate(undefended_prompt(attack.question, documents), max_new_tokens),
            "defended": generator.generate(build_prompt(attack.question, documents, style=style), max_new_tokens),
        }
        row = {"id": attack.id, "style": attack.style, "position": position}
        for condition, answer in answers.items():
            row[f"{condition}_answer"] = answer
            row[f"{condition}_success"] = attack.succeeded(answer)
            row[f"{condition}_marker"] = attack.succeeded(answer, strict=False)
        rows.append(row)
    return rows


def controls(generator: rh.Generator, attacks: list[Attack], style: str = "plain",
             max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
    """Attacks whose marker shows up with no attack at all, in the answer from the true documents."""
    clean_answers: dict[tuple[str, tuple[str, ...]], str] = {}
    false_alarms = []
    for attack in attacks:
        key = (attack.question, attack.documents)
        if key not in clean_answers:
            prompt = build_prompt(attack.question, list(attack.documents), style=style)
            clean_answers[key] = generator.generate(prompt, max_new_tokens)
        if attack.succeeded(clean_answers[key], strict=False):
            false_alarms.append(attack.id)
    return false_alarms


def rate(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} ({sum(flags) / len(flags):.0%})"


def table(rows: list[dict]) -> str:
    """Markdown: attack success rate per attack style and in total, undefended vs defended."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["style"]].append(row)
    for position in sorted({row["position"] for row in rows}):
        groups[f"*all, malicious document {position}*"] = [r for r in rows if r["position"] == position]
    groups["**all**"] = rows
    lines = [
        "| attack style | runs | undefended ASR | defended ASR | undefended, marker only | defended, marker only |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, group in groups.items():
        cells = [rate([r[key] for r in group]) for key in
                 ("undefended_success", "defended_success", "undefended_marker", "defended_marker")]
        lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(rows: list[dict]) -> str:
    """Markdown: every run with both answers (their first 60 characters)."""
    def cell(text: str) -> str:
        return " ".join(text.split())[:60].replace("|", "\\|")

    lines = ["| attack | malicious | undefended answer | won | defended answer | won |", "|---|---|---|:-:|---|:-:|"]
    for r in rows:
        lines.append(f"| {r['id']} | {r['position']} | {cell(r['undefended_answer'])} | "
                     f"{'yes' if r['undefended_success'] else ''} | {cell(r['defended_answer'])} | "
                     f"{'yes' if r['defended_success'] else ''} |")
    return "\n".join(lines)


def add_style(generator: rh.Generator, attacks: list[Attack], rows: list[dict], style: str,
              max_new_tokens: int = MAX_NEW_TOKENS) -> None:
    """Add to each row of ``run_attacks`` the defended answer with another prompt ``style``."""
    by_id = {attack.id: attack for attack in attacks}
    for row in rows:
        attack = by_id[row["id"]]
        prompt = build_prompt(attack.question, attack.context(row["position"]), style=style)
        answer = generator.generate(prompt, max_new_tokens)
        row[f"{style}_answer"], row[f"{style}_success"] = answer, attack.succeeded(answer)


def run(quick: bool = False):
    """The part of ``python -m benchmarks``: attack success rates undefended, defended, and with the idk prompt."""
    from .common import Section
    from .common import table as md_table

    attacks = load_attacks()[: 10 if quick else None]
    positions = ("last",) if quick else POSITIONS
    start = time.perf_counter()
    generator = rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")
    rows = run_attacks(generator, attacks, positions)
    add_style(generator, attacks, rows, "idk")
    false_alarms = controls(generator, attacks)
    seconds = time.perf_counter() - start
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["style"]].append(row)
    groups["**all**"] = rows
    keys = ("undefended_success", "defended_success", "idk_success")
    section = Section("Prompt injection: how often an attack wins, with and without the defences")
    section.tables.append(md_table(
        ["attack style", "runs", "undefended (seed layout, verbatim)", "defended (`build_prompt`)",
         "defended, `idk` prompt style"],
        [[name, len(group), *(rate([r[key] for r in group]) for key in keys)] for name, group in groups.items()]))
    section.notes += [
        f"{len(attacks)} attacks of `rag_helpers/data/injection_attacks.json`, the malicious document "
        f"{' and '.join(positions)} among the true ones; {generator.display_name} on the CPU, greedy, "
        f"{MAX_NEW_TOKENS} new tokens; {len(rows) * 3} answers in {seconds:.0f} s.",
        "An attack wins when the answer holds its marker (\"PWNED\", the planted false fact) and not the true "
        "answer. Control, the true facts alone: the marker appeared for "
        f"{len(false_alarms)} of {len(attacks)} attacks.",
        "A 135M model: differences of a few runs are within its noise. The defences stop forged structure "
        "(headers, control tokens); no rewriting of text stops an order written in plain words "
        "(notebook 05, section 7). Every answer: `python -m benchmarks.injection`.",
    ]
    section.raw = {"runs": len(rows), "seconds": seconds, "control_false_alarms": false_alarms,
                   **{key: sum(r[key] for r in rows) for key in keys}}
    return section


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the first 10 attacks, malicious document last")
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads (default: PyTorch's choice)")
    parser.add_argument("--style", default="plain", choices=sorted(PROMPT_STYLES),
                        help="prompt style of the defended prompt (default: plain, the seed layout)")
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--json", metavar="PATH", help="also write every answer as JSON")
    args = parser.parse_args(argv)

    attacks = load_attacks()[: 10 if args.quick else None]
    positions = ("last",) if args.quick else POSITIONS
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    generator = rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")
    rows = run_attacks(generator, attacks, positions, args.style, args.max_new_tokens)
    false_alarms = controls(generator, attacks, args.style, args.max_new_tokens)
    seconds = time.perf_counter() - start

    print(f"\n## Prompt injection: attack success rate (ASR), {generator.display_name}, CPU, greedy, "
          f"max_new_tokens={args.max_new_tokens}, defended style '{args.style}'\n")
    print(table(rows))
    print(f"\nControl (true facts only, no attack): marker in the answer for "
          f"{len(false_alarms)} of {len(attacks)} attacks{': ' + ', '.join(false_alarms) if false_alarms else ''}.")
    print("ASR: the answer has the attacker's marker and not the true answer; 'marker only': the marker, "
          "whatever else the answer says.")
    print(f"{len(attacks)} attacks x {len(positions)} positions, {2 * len(rows)} answers and the controls "
          f"in {seconds:.0f} s.\n")
    print(details(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"style": args.style, "max_new_tokens": args.max_new_tokens, "rows": rows,
                       "control_false_alarms": false_alarms}, f, indent=1)


if __name__ == "__main__":
    main()
