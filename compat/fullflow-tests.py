"""Prints the names of the tests versitygw's `test full-flow` runs (without
versioning, Azure, Windows or sidecar modes), read from its group-tests.go."""
import re
import sys

src = open(sys.argv[1]).read()


def body(name):
    m = re.search(r"func " + name + r"\(ts \*TestState\) \{(.*?)\n\}", src, re.S)
    return m.group(1) if m else ""


def without_versioning(text):
    # Drop `if ts.conf.versioningEnabled { ... }` blocks (one level deep).
    return re.sub(r"\n(\t+)if ts\.conf\.versioningEnabled \{.*?\n\1\}", "", text, flags=re.S)


groups = re.findall(r"^\t(Test\w+)\(ts\)", without_versioning(body("TestFullFlow")), re.M)
seen = set()
for g in groups:
    for t in re.findall(r"ts\.Run\((\w+)\)", without_versioning(body(g))):
        if t not in seen:
            seen.add(t)
            print(t)
