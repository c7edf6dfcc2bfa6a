"""Turns a valgrind lackey trace into a linker symbol-ordering list (benches/startup_symbols.sh).

Code blocks, in the order they first ran → the linker input section (one per function: Rust
and the C libraries are built with function sections) holding each → one symbol of that
section, which is what `--symbol-ordering-file` needs to move the section. Addresses come
from the linker's map of the very binary traced, so the names match the shipped build.

    python3 startup_symbols.py MAP TRACE LOAD_BASE > order

Placed first of all, before the start-up code: the argon2 kernel (`FIRST`), so its place
(the start of .text, 64-byte aligned) no longer depends on the rest of the layout. Its speed
is the sign-in target's: with the kernel wherever the list happened to leave it, part B of
benches/run.sh measured a sign-in overhead of 5.7, 6.3 and 7.3 ms; with it first, -2.8 and
2.0 ms, as before any ordering. This machine's noise is large, so read that as likely, not
proven; the placement costs nothing either way.
"""

import bisect
import re
import sys

# Mangled-name patterns, in the order they are placed.
FIRST = [
    r"^_ZN10portcullis6crypto8password7compute17h[0-9a-f]{16}E$",
    r"^_ZN6argon26Argon28compress13compress_avx217h[0-9a-f]{16}E$",
    r"^_ZN6argon26Argon28compress17h[0-9a-f]{16}E$",
    r"^_ZN6argon212blake2b_long12blake2b_long17h[0-9a-f]{16}E$",
]


def code_sections(mapfile):
    """(start, size, first symbol) of every input section placed in .text, by address."""
    sections = []  # [start, size, is_code, symbols]
    with open(mapfile, errors="replace") as f:
        for line in f:
            p = line.split()
            if len(p) < 5:
                continue
            try:
                vma, size = int(p[0], 16), int(p[2], 16)
            except ValueError:
                continue
            name = " ".join(p[4:])
            if ":(" in name:  # an input section: "path/obj.o:(.text.name)"
                sec = name[name.index(":(") + 2:].rstrip(")")
                sections.append([vma, size, sec.startswith(".text"), []])
            elif sections and not name.startswith("."):  # a symbol inside the last section
                sections[-1][3].append(name)
    code = [(s[0], s[1], s[3][0]) for s in sections if s[2] and s[1] > 0 and s[3]]
    return sorted(code)


def main():
    mapfile, trace, base = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
    code = code_sections(mapfile)
    starts = [c[0] for c in code]
    seen_blocks, seen, order, size = set(), set(), [], 0
    with open(trace, errors="replace") as f:
        for line in f:
            if not line.startswith("SB "):
                continue
            addr = line[3:].strip()
            if addr in seen_blocks:
                continue
            seen_blocks.add(addr)
            a = int(addr, 16) - base
            i = bisect.bisect_right(starts, a) - 1
            if i < 0 or i in seen:
                continue
            start, sz, sym = code[i]
            if a < start + sz:
                seen.add(i)
                order.append(sym)
                size += sz
    first = [sym for pat in FIRST for _, _, sym in code if re.match(pat, sym)]
    order = first + [sym for sym in order if sym not in first]
    print(f"{len(order)} functions, {size / 1e6:.2f} MB of code; first: {len(first)} of {len(FIRST)}",
          file=sys.stderr)
    print("\n".join(order))


if __name__ == "__main__":
    main()
