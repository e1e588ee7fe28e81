#!/usr/bin/env python3
"""Prints which top-level modules of flow2api-sdk/src each module imports (test code left out)
and fails when a module imports one that comes later in LAYERS, or when modules import each
other in a cycle. Usage: python3 scripts/module-graph.py [-v]  (-v: the files behind each edge)."""

import collections
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "flow2api-sdk", "src")

# Lowest first: a module may import only modules before it.
LAYERS = [
    "util", "public_ip", "secret", "proxy_url", "models", "config", "coordination", "seams", "memory", "logs", "probe", "cache", "settings", "tenants",
    "transport", "egress", "flow", "captcha", "pool", "generate", "jobs", "api", "conformance", "testing",
    "native",
    # The fuzz targets' entry points (feature `fuzzing`): nothing imports them.
    "fuzzing",
]


def strip_tests(src):
    """Drops every `#[cfg(test)]` item with a body (test modules and test-only functions)."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*[^{;]*\{", src)
        if not m:
            return src
        depth, j = 0, m.end() - 1
        while j < len(src):
            if src[j] == "{":
                depth += 1
            elif src[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        src = src[: m.start()] + src[j + 1 :]


def group_names(src, i):
    """The first path segment of each item in the `{…}` group starting at `src[i]`."""
    depth, items, cur = 0, [], ""
    for c in src[i:]:
        if c == "{":
            depth += 1
            if depth == 1:
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                items.append(cur)
                break
        if depth == 1 and c == ",":
            items.append(cur)
            cur = ""
        elif depth >= 1:
            cur += c
    return [m.group(1) for m in (re.match(r"\s*(\w+)", x) for x in items) if m]


def graph():
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for d, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, ROOT)
            top = rel.split(os.sep)[0].removesuffix(".rs")
            if top == "lib":
                continue
            src = re.sub(r"//.*", "", strip_tests(open(path, encoding="utf-8").read()))
            for m in re.finditer(r"crate::", src):
                j = m.end()
                if src[j : j + 1] == "{":
                    names = group_names(src, j)
                else:
                    w = re.match(r"\w+", src[j:])
                    names = [w.group(0)] if w else []
                for n in names:
                    if n != top and n in LAYERS:
                        edges[top][n].add(rel)
    return edges


def main():
    edges = graph()
    problems = []
    for module in sorted(edges):
        print(f"{module}: {', '.join(sorted(edges[module]))}")
        for dep, files in sorted(edges[module].items()):
            if "-v" in sys.argv:
                print(f"    {dep}: {', '.join(sorted(files))}")
            if module in LAYERS and LAYERS.index(dep) > LAYERS.index(module):
                problems.append(f"{module} imports {dep}, a later layer ({', '.join(sorted(files))})")
    unknown = sorted(set(edges) - set(LAYERS))
    if unknown:
        problems.append(f"modules missing from LAYERS: {', '.join(unknown)}")
    for p in problems:
        print("error:", p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
