#!/usr/bin/env python3
"""Writes the Python API reference (docs/python_api.md) from the package's docstrings.

  PYTHONPATH=build/release/python python3 scripts/python-api-doc.py > docs/python_api.md

tests/python/test_package.py checks that the checked-in file is what this prints.
"""
import inspect

import escala
import escala.distributed


def entry(name, obj, level="###"):
    lines = []
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        sig = ""
    kind = "class " if inspect.isclass(obj) else ""
    lines.append(f"{level} `{kind}{name}{sig}`\n")
    doc = inspect.getdoc(obj)
    if doc:
        lines.append(doc + "\n")
    if inspect.isclass(obj):
        members = {}
        for base in reversed(obj.__mro__):  # escala's own classes, the most derived last
            if base.__module__.startswith("escala"):
                members.update(vars(base))
        for attr, member in sorted(members.items()):
            if attr.startswith("_") or not (inspect.isfunction(member) or
                                             isinstance(member, (property, classmethod))):
                continue
            target = member.fget if isinstance(member, property) else member
            target = getattr(target, "__func__", target)
            try:
                msig = "" if isinstance(member, property) else str(inspect.signature(target))
            except (TypeError, ValueError):
                msig = ""
            mdoc = inspect.getdoc(target)
            lines.append(f"- `{attr}{msig}`" + (f": {mdoc.splitlines()[0]}" if mdoc else ""))
        lines.append("")
    return "\n".join(lines)


def main():
    out = ["# Python API reference",
           "",
           "Generated from the docstrings by `scripts/python-api-doc.py`; docs/python.md is the guide.",
           ""]
    out.append("## escala\n")
    for name in sorted(escala.__all__, key=str.lower):
        if name in ("__version__", "distributed"):
            continue
        out.append(entry(f"escala.{name}", getattr(escala, name)))
    out.append("## escala.distributed\n")
    for name in ("init", "Communicator"):
        out.append(entry(f"escala.distributed.{name}", getattr(escala.distributed, name)))
    print("\n".join(out).rstrip() + "\n", end="")


if __name__ == "__main__":
    main()
