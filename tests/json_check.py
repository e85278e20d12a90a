#!/usr/bin/python3
"""json_check.py - validate ferry's --json output against its schema.

    json_check.py SCHEMA FILE [EXPR...]

FILE holds what `ferry --json ...` printed on stdout: exactly one JSON
object on one line.  Each EXPR is a Python expression over `doc` (the
parsed object) that must be true, e.g. 'doc["exit_code"] == 1'.
Exit 0 when valid and every EXPR holds, 1 otherwise (with the reason on
stderr), 2 on a usage error.  Needs python3-jsonschema (>= 4, for draft
2020-12).  Test helper only.
"""
import json
import sys

import jsonschema


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    with open(argv[2], encoding="utf-8") as f:
        text = f.read()
    lines = [l for l in text.split("\n") if l]
    if len(lines) != 1:
        print(f"expected one line of JSON, got {len(lines)}:\n{text}", file=sys.stderr)
        return 1
    doc = json.loads(lines[0])
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
    for e in errors:
        print(f"schema: {e.message} at {list(e.absolute_path)}", file=sys.stderr)
    if errors:
        return 1
    for expr in argv[3:]:
        names = {"__builtins__": {"len": len, "sum": sum, "any": any, "all": all},
                 "doc": doc}
        if not eval(expr, names):
            print(f"does not hold: {expr}\n{json.dumps(doc, indent=1)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
