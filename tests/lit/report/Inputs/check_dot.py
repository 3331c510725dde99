"""Checks the shape of dlc's --emit=dot output without Graphviz (tests/lit/report/dot.test): braces
balance, every statement is a graph, subgraph, attribute, node or edge line as codegen/dot.c
writes them, quoted strings close, and every edge joins two declared nodes. Prints a summary."""
import re
import sys

text = open(sys.argv[1]).read()
depth, nodes, edges, clusters, dashed = 0, set(), [], 0, 0
node = re.compile(r'^(\w+) \[(.*)\];$')
edge = re.compile(r'^(\w+) -> (\w+)( \[style=dashed\])?;$')
for n, raw in enumerate(text.splitlines(), 1):
    line = raw.strip()
    if line.replace('\\\\', '').replace('\\"', '').count('"') % 2:
        sys.exit(f"line {n}: an unclosed string: {raw}")
    if line == "digraph dlc {" or re.fullmatch(r"subgraph cluster_\w+ \{", line):
        clusters += line.startswith("subgraph")
        depth += 1
    elif line == "}":
        depth -= 1
        if depth < 0:
            sys.exit(f"line {n}: unbalanced '}}'")
    elif m := edge.match(line):
        edges.append((n, m.group(1), m.group(2)))
        dashed += bool(m.group(3))
    elif m := node.match(line):
        if m.group(1) != "node":
            nodes.add(m.group(1))
    elif not re.fullmatch(r'(label="[^"\\]*(\\.[^"\\]*)*"|style="[\w,]+"; fillcolor="#[0-9a-f]{6}");', line):
        sys.exit(f"line {n}: not a statement dot.c writes: {raw}")
if depth:
    sys.exit("unbalanced braces at the end")
for n, a, b in edges:
    if a not in nodes or b not in nodes:
        sys.exit(f"line {n}: an edge to an undeclared node: {a} -> {b}")
print(f"valid: {len(nodes)} nodes, {len(edges)} edges ({dashed} dashed), {clusters} clusters")
