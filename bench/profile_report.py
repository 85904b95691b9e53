"""Turn py-spy's raw (collapsed-stack) output into hotspot tables: self and cumulative time, file:line.

py-spy samples every process of the tree (``--subprocesses``): the syndicate main process and its
parse workers (forked by multiprocessing's forkserver). Only samples of threads that were running
are recorded (no ``--idle``), so this is a CPU profile: time waiting on sockets or on other
processes is not in it.

Functions are named ``qualname (file:def-line)``; self-time rows also give the hottest line. Def lines
come from parsing the source file (the innermost ``def`` around the sampled line).

Usage: python bench/profile_report.py PROFILE.collapsed[.gz] [--top 25] > PROFILE.md
"""

from __future__ import annotations

import argparse
import ast
import gzip
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_PROCESS = re.compile(r'^process (?P<pid>\d+):"(?P<cmd>.*)"$')
ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Frame:
    func: str
    file: str
    line: int


def _parse_frame(text: str) -> Frame | None:
    m = _FRAME.match(text)
    if not m:
        return None
    return Frame(m["func"], m["file"], int(m["line"] or 0))


@lru_cache(maxsize=None)
def _defs(path: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of every function in a source file."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out.append((start, node.end_lineno or node.lineno, node.name))
    return out


#: Where to read syndicate's sources for def lines, when the profiled version is not the one on disk
#: (a folder holding ``syndicate/`` as it was when the profile was taken); None: the files on disk.
SOURCE_ROOT: str | None = None


def _source(path: str) -> str:
    if SOURCE_ROOT and path.startswith(ROOT + os.sep + "syndicate" + os.sep):
        return SOURCE_ROOT + path[len(ROOT):]
    return path


def def_line(frame: Frame) -> int:
    """The line of the ``def`` of the function this frame is in (or the sampled line if unknown)."""
    name = frame.func.rsplit(".", 1)[-1]
    best = None
    for start, end, fname in _defs(_source(frame.file)):
        if start <= frame.line <= end and (fname == name or best is None):
            if best is None or start > best[0] or fname == name:
                best = (start, fname)
    return best[0] if best else frame.line


def short(path: str) -> str:
    """A readable path: relative to the repository, or from site-packages / the stdlib."""
    i = path.find("site-packages" + os.sep)
    if i >= 0:
        return path[i + len("site-packages") + 1:]
    if path.startswith(ROOT + os.sep):
        return path[len(ROOT) + 1:]
    for marker in ("site-packages" + os.sep, "lib" + os.sep + "python3."):
        i = path.find(marker)
        if i >= 0:
            rest = path[i + len(marker):]
            return rest.split(os.sep, 1)[1] if marker.startswith("lib") and os.sep in rest else rest
    return path


def load(path: Path) -> list[tuple[str, list[Frame], int]]:
    """(process label, frames root→leaf, samples) for every stack in the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    stacks = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:  # type: ignore[operator]
        for line in handle:
            line = line.rstrip("\n")
            if not line:
                continue
            stack_text, _, count = line.rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            process = "?"
            # --subprocesses prefixes the chain of processes (main; forkserver; worker): the last is
            # the one sampled. A command line may contain ";", so these are cut at '";' first.
            depth = 0
            while stack_text.startswith("process "):
                end = stack_text.find('";')
                head, stack_text = (stack_text, "") if end < 0 else (stack_text[:end + 1], stack_text[end + 2:])
                m = _PROCESS.match(head)
                cmd = m["cmd"] if m else head
                depth += 1
                if depth == 1:
                    process = "main"
                elif "resource_tracker" in cmd:
                    process = "resource tracker"
                elif "parseworker" in cmd or depth >= 3:
                    process = "parse worker"
                elif "forkserver" in cmd:
                    process = "forkserver"
                else:
                    process = cmd[:60] or "child"
            parts = stack_text.split(";")
            frames = [f for f in (_parse_frame(p) for p in parts) if f is not None]
            if frames:
                stacks.append((process, frames, n))
    return stacks


def analyse(path: Path, top: int = 25) -> dict:
    stacks = load(path)
    total = sum(n for _, _, n in stacks)
    by_process: Counter[str] = Counter()
    self_fn: Counter[tuple[str, str, int]] = Counter()
    self_line: dict[tuple[str, str, int], Counter[int]] = defaultdict(Counter)
    cum_fn: Counter[tuple[str, str, int]] = Counter()
    cum_pkg: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    for process, frames, n in stacks:
        by_process[process] += n
        leaf = frames[-1]
        key = (leaf.func, leaf.file, def_line(leaf))
        self_fn[key] += n
        self_line[key][leaf.line] += n
        self_pkg[_package(leaf.file)] += n
        seen = set()
        pkgs = set()
        for f in frames:
            k = (f.func, f.file, def_line(f))
            if k not in seen:
                seen.add(k)
                cum_fn[k] += n
            pkgs.add(_package(f.file))
        for p in pkgs:
            cum_pkg[p] += n
    return {"total": total, "stages": stage_table(stacks, total), "by_process": by_process, "self_fn": self_fn, "self_line": self_line,
            "cum_fn": cum_fn, "cum_pkg": cum_pkg, "self_pkg": self_pkg, "top": top}


#: Stages of a sync, each recognised by a function on the stack: (label, qualnames, file suffix).
#: Several names where the code has used several (it is being changed while it is benchmarked).
STAGES: list[tuple[str, tuple[str, ...], str]] = [
    ("start-up: module imports (anywhere)", ("_find_and_load",), "<frozen importlib._bootstrap>"),
    ("config: load_config", ("load_config",), "syndicate/config.py"),
    ("store: open, lock, schema", ("open_store", "SQLiteStore.lock", "SQLStore._ready", "SQLiteStore._ready"), "syndicate/"),
    ("main thread, fetch phase: Pipeline.fetch", ("Pipeline.fetch",), "syndicate/pipeline.py"),
    ("  identity: known_posts + identify", ("known_posts", "Pipeline._identify"), "syndicate/"),
    ("    Store.all_entries (decoding stored entries)", ("SQLStore.all_entries", "SQLiteStore.all_entries", "SQLStore.all_entries_of"), "syndicate/sql_store.py"),
    ("  record feeds and entries: record_feeds", ("record_feeds",), "syndicate/record.py"),
    ("    Store.save_entries", ("SQLStore.save_entries", "SQLiteStore.save_entries", "SQLStore.save_entries_of"), "syndicate/sql_store.py"),
    ("fetch threads: FeedReader.read", ("FeedReader.read",), "syndicate/ingest.py"),
    ("  HTTP: Fetcher.get", ("Fetcher.get",), "syndicate/fetch.py"),
    ("  hand-off to a parse worker: ParserPool.parse", ("ParserPool.parse",), "syndicate/feeds.py"),
    ("parse workers: parse_bytes", ("parse_bytes",), "syndicate/feeds.py"),
    ("parse workers: their start-up imports (in parse workers)", ("_find_and_load",), "<frozen importlib._bootstrap>"),
    ("  feedparser.parse", ("parse",), "feedparser/api.py"),
    ("  normalise (per entry)", ("normalise",), "syndicate/feeds.py"),
    ("    rewrite.clean", ("clean",), "syndicate/rewrite.py"),
    ("push phase: Pipeline._sync_partner", ("Pipeline._sync_partner",), "syndicate/pipeline.py"),
    ("  Catalog (current entries, series)", ("Catalog.__init__",), "syndicate/catalog.py"),
    ("    Store.current_entries", ("SQLStore.current_entries", "SQLiteStore.current_entries"), "syndicate/sql_store.py"),
    ("  Planner.predicted_copies", ("Planner.predicted_copies",), "syndicate/plan.py"),
    ("  Planner.plan", ("Planner.plan",), "syndicate/plan.py"),
    ("    Rules.verdict", ("Rules.verdict",), "syndicate/decide.py"),
    ("    Composer.compose (render)", ("Composer.compose",), "syndicate/compose.py"),
    ("      Renderer.article", ("Renderer.article",), "syndicate/render.py"),
    ("  Deliverer.execute", ("Deliverer.execute",), "syndicate/deliver.py"),
    ("    Store.put", ("SQLStore.put", "SQLiteStore.put"), "syndicate/sql_store.py"),
    ("    the partner's create / update", ("Publisher.create", "Publisher.update"), "syndicate/publishers/"),
    ("      _write_atomic (files partner)", ("_write_atomic",), "syndicate/publishers/files.py"),
    ("any SQLAlchemy commit (an fsync with synchronous=FULL)", ("DefaultDialect.do_commit",), "sqlalchemy/engine/default.py"),
]


def stage_table(stacks: list[tuple[str, list[Frame], int]], total: int) -> list[str]:
    counts = [0] * len(STAGES)
    for process, frames, n in stacks:
        for i, (label, names, suffix) in enumerate(STAGES):
            if "in parse workers" in label and process != "parse worker":
                continue
            if any(f.func in names and suffix in f.file for f in frames):
                counts[i] += n
    lines = ["| stage (recognised by a function on the stack) | share of samples |", "|---|---:|"]
    for (label, names, _), c in zip(STAGES, counts):
        depth = (len(label) - len(label.lstrip())) // 2
        shown = "· " * depth + label.strip()
        lines.append(f"| {shown} (`{'` / `'.join(names)}`) | {100 * c / (total or 1):.1f}% |")
    return lines


def _package(path: str) -> str:
    s = short(path)
    if s.startswith("syndicate" + os.sep):
        return "syndicate"
    if s.startswith("<frozen") or os.sep not in s:
        return "stdlib" if not s.startswith("syndicate") else "syndicate"
    head = s.split(os.sep, 1)[0]
    if path.startswith(ROOT) or "site-packages" in path:
        return head
    return "stdlib"


def _name(key: tuple[str, str, int]) -> str:
    func, file, line = key
    return f"`{func}` ({short(file)}:{line})"


def hotspots(result: dict, n: int = 10) -> list[str]:
    """One line per top self-time function: 'pct% name — hottest line'."""
    total = result["total"] or 1
    out = []
    for key, count in result["self_fn"].most_common(n):
        hot_line, _ = result["self_line"][key].most_common(1)[0]
        cum = result["cum_fn"][key]
        out.append(f"{100 * count / total:5.1f}% self, {100 * cum / total:5.1f}% cum  {_name(key)}  "
                   f"hottest line {short(key[1])}:{hot_line}")
    return out


def markdown(result: dict, interval_hz: int | None = None) -> str:
    total = result["total"] or 1
    top = result["top"]
    pct = lambda c: f"{100 * c / total:.1f}%"  # noqa: E731
    lines = []
    secs = f" ≈ {total / interval_hz:.1f} thread-seconds on CPU or in a system call" if interval_hz else ""
    lines.append(f"Samples: {total}{secs}. By process: "
                 + ", ".join(f"{p} {pct(c)}" for p, c in result["by_process"].most_common()) + ".")
    lines.append("")
    lines.append("### Where the samples fall, by stage of the sync")
    lines.append("")
    lines += result["stages"]
    lines.append("")
    lines.append("### By package (self = where the CPU was; cumulative = on the stack)")
    lines.append("")
    lines.append("| package | self | cumulative |")
    lines.append("|---|---:|---:|")
    for pkg, c in result["self_pkg"].most_common(15):
        lines.append(f"| {pkg} | {pct(c)} | {pct(result['cum_pkg'][pkg])} |")
    lines.append("")
    lines.append(f"### Top {top} functions by self time")
    lines.append("")
    lines.append("| # | self | cum | function (file:def line) | hottest lines (share of its self time) |")
    lines.append("|---:|---:|---:|---|---|")
    for i, (key, c) in enumerate(result["self_fn"].most_common(top), 1):
        hot = ", ".join(f"{short(key[1])}:{ln} ({100 * k / c:.0f}%)" for ln, k in result["self_line"][key].most_common(3))
        lines.append(f"| {i} | {pct(c)} | {pct(result['cum_fn'][key])} | {_name(key)} | {hot} |")
    lines.append("")
    lines.append(f"### Top {top} syndicate functions by cumulative time")
    lines.append("")
    lines.append("| # | cum | self | function (file:def line) |")
    lines.append("|---:|---:|---:|---|")
    ours = [(k, c) for k, c in result["cum_fn"].most_common() if short(k[1]).startswith("syndicate" + os.sep)]
    for i, (key, c) in enumerate(ours[:top], 1):
        lines.append(f"| {i} | {pct(c)} | {pct(result['self_fn'][key])} | {_name(key)} |")
    lines.append("")
    lines.append(f"### Top {top} library functions by cumulative time (called from syndicate)")
    lines.append("")
    lines.append("| # | cum | self | function (file:def line) |")
    lines.append("|---:|---:|---:|---|")
    theirs = [(k, c) for k, c in result["cum_fn"].most_common()
              if not short(k[1]).startswith("syndicate" + os.sep) and k[0] not in ("<module>",)
              and "click" + os.sep not in k[1] and "multiprocessing" + os.sep not in k[1]
              and "concurrent" + os.sep not in k[1] and "threading.py" not in k[1]]
    for i, (key, c) in enumerate(theirs[:top], 1):
        lines.append(f"| {i} | {pct(c)} | {pct(result['self_fn'][key])} | {_name(key)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--rate", type=int, default=None)
    ap.add_argument("--source-root", default=None,
                    help="a folder with syndicate/ as it was when the profile was taken (for def lines)")
    args = ap.parse_args()
    global SOURCE_ROOT
    SOURCE_ROOT = args.source_root
    result = analyse(args.profile, args.top)
    print(markdown(result, args.rate))
    print("\n".join(hotspots(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
