#!/usr/bin/env python3
"""Checks the shape of the library that review alone misses, and fails loudly:

- no production function over 80 lines (shared/, functions/, cli/; tests excepted);
- no file over 500 lines in shared/src (tests, the route table and the in-memory test
  ports excepted);
- imports between the library's layers point down only (see LAYERS), and the AWS
  adapters are used by the wiring alone;
- no import cycle among the modules of one folder (engine/, runner/, services/, ...);
- no AWS SDK type outside shared/src/adapters/.

Usage: python3 scripts/check-architecture.py [--list]   (--list prints every function
over 60 lines, longest first, as a to-do list)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "shared", "src")
MAX_FN, MAX_FILE = 80, 500
# Long by nature: a table of every route; the in-memory ports (test support).
FILE_EXCEPTIONS = {"http/routes.rs", "ports/memory.rs"}

# Each top-level module of shared/src may import from the ones ranked below it.
LAYERS = {
    "time": 0, "units": 0, "telemetry": 0,
    "domain": 1,
    "error": 2, "config": 2.1,
    "ports": 2.5,
    "hooks": 3,
    "engine": 4,
    "runner": 5,
    "services": 5,
    "http": 6,
    "adapters": 3,
    "wiring": 7,
}
SDK = re.compile(r"\b(aws_sdk_[a-z0-9_]+|aws_config|aws_smithy_[a-z_]+)::")


def rust_files(top):
    for base, _, files in os.walk(top):
        if "/target" in base:
            continue
        for f in files:
            if f.endswith(".rs"):
                yield os.path.join(base, f)


def production_lines(text):
    """The file's lines with `#[cfg(test)]` modules blanked out (line numbers kept)."""
    lines = text.split("\n")
    out = list(lines)
    i = 0
    while i < len(lines):
        if lines[i].strip() == "#[cfg(test)]":
            depth, started, j = 0, False, i + 1
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                started = started or "{" in lines[j]
                if started and depth <= 0:
                    break
                if not started and lines[j].rstrip().endswith(";"):
                    break
                j += 1
            for k in range(i, min(j + 1, len(lines))):
                out[k] = ""
            i = j + 1
        else:
            i += 1
    return out


FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+([a-z_][a-z0-9_]*)")


def functions(lines):
    """(name, first line, length) of every function whose body opens on its signature's lines."""
    found = []
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            code = re.sub(r'"([^"\\]|\\.)*"', '""', lines[j].split("//")[0])
            code = re.sub(r"'([^'\\]|\\.)'", "''", code)
            depth += code.count("{") - code.count("}")
            if "{" in code:
                started = True
            if not started and code.rstrip().endswith(";"):
                break
            if started and depth <= 0:
                found.append((m.group(6), i + 1, j - i + 1))
                break
            j += 1
        i += 1
    return found


def check_functions(problems, listing):
    long_ones = []
    for top in ("shared", "functions", "cli"):
        for path in rust_files(os.path.join(ROOT, top)):
            rel = os.path.relpath(path, ROOT)
            if "/tests/" in rel or rel.endswith("/tests.rs"):
                continue
            with open(path, encoding="utf-8") as f:
                lines = production_lines(f.read())
            for name, line, length in functions(lines):
                long_ones.append((length, f"{rel}:{line} {name}"))
                if length > MAX_FN:
                    problems.append(f"{rel}:{line}: fn {name} is {length} lines (limit {MAX_FN})")
    if listing:
        for length, where in sorted(long_ones, reverse=True):
            if length > 60:
                print(f"{length:4}  {where}")
    return len(long_ones)


def module_of(path):
    rel = os.path.relpath(path, LIB)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def imports(path, text):
    """Module paths (lists) this file names through `crate::` or `super::`."""
    me = module_of(path)
    found = []
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", text):
        found.append(m.group(1).split("::"))
    for m in re.finditer(r"\bsuper::((?:super::)*)([a-z_][a-z0-9_]*)", text):
        # In `a/b.rs` and in `a/b/mod.rs` alike, `super` is module `a`.
        ups = 1 + m.group(1).count("super::")
        found.append(me[: len(me) - ups] + [m.group(2)])
    return found


def check_layers(problems):
    graphs = {}
    for path in rust_files(LIB):
        rel = os.path.relpath(path, LIB)
        if rel.endswith("tests.rs"):
            continue
        with open(path, encoding="utf-8") as f:
            code = [l.split("//")[0] for l in production_lines(f.read())]
            text = "\n".join(code)
        me = module_of(path)
        if not me or me == ["lib"]:
            continue
        top = me[0]
        for target in imports(path, text):
            if not target:
                continue
            other = target[0]
            if other in LAYERS and other != top:
                if other == "adapters" and top != "wiring":
                    problems.append(f"{rel}: uses crate::adapters (only the wiring may)")
                elif LAYERS[other] >= LAYERS.get(top, 99) and other != "adapters":
                    problems.append(f"{rel}: imports {'::'.join(target)} from a layer at or above its own")
            # Sibling modules of one folder: record edges for the cycle check.
            if len(me) >= 2 and len(target) >= len(me) and target[: len(me) - 1] == me[:-1]:
                sibling = target[len(me) - 1]
                if sibling != me[-1]:
                    graphs.setdefault(tuple(me[:-1]), {}).setdefault(me[-1], set()).add(sibling)
        if SDK.search(text) and top != "adapters":
            problems.append(f"{rel}: names an AWS SDK type outside adapters/")
    for folder, graph in graphs.items():
        cycle = find_cycle(graph)
        if cycle:
            problems.append(f"import cycle in {'/'.join(folder)}/: {' -> '.join(cycle)}")


def find_cycle(graph):
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph and nxt not in state:
                continue
            if state.get(nxt) == "open":
                return trail + [node, nxt]
            if nxt not in state:
                found = visit(nxt, trail + [node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                start = found.index(found[-1])
                return found[start:]
    return None


def check_files(problems):
    count = 0
    for path in rust_files(LIB):
        rel = os.path.relpath(path, LIB)
        if rel.endswith("tests.rs") or rel in FILE_EXCEPTIONS:
            continue
        with open(path, encoding="utf-8") as f:
            lines = [l for l in production_lines(f.read())]
        while lines and not lines[-1].strip():
            lines.pop()
        count += 1
        if len(lines) > MAX_FILE:
            problems.append(f"shared/src/{rel}: {len(lines)} lines without its tests (limit {MAX_FILE})")
    return count


def main():
    problems = []
    fns = check_functions(problems, "--list" in sys.argv)
    files = check_files(problems)
    check_layers(problems)
    for p in problems:
        print(p)
    print(f"checked {fns} functions and {files} library files: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
