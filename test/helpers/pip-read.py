"""pip's own reading of requirements files, as JSON: what pip would install and which options it sees.

    python3 pip-read.py FILE...

For each file, the lines pip's own parser yields (pip._internal.req.req_file, the code `pip install -r`
runs, -r and -c files followed), each with its line number, the requirement (name, specifier, marker)
or the options set on it. A file pip refuses gives {"error": ...}. PYTHONUTF8=1 is expected, as the
installer sets it.
"""
import json
import sys

from pip._internal.network.session import PipSession
from pip._internal.req.req_file import RequirementsFileParser, build_parser, get_line_parser
from pip._internal.req.constructors import parse_req_from_line


def changed_options(opts):
    defaults = vars(build_parser().get_default_values())
    defaults["index_url"] = None
    out = {}
    for key, value in vars(opts).items():
        if key == "hashes" or value == defaults.get(key):
            continue
        out[key] = value if isinstance(value, (str, bool, list)) else repr(value)
    return out


def read_line(line):
    entry = {"file": line.filename, "line": line.lineno, "options": changed_options(line.opts)}
    entry["hashes"] = sorted(
        f"{alg}:{digest}" for alg, digests in (line.opts.hashes or {}).items() for digest in digests
    )
    if line.is_requirement:
        entry["editable"] = line.is_editable
        entry["requirement"] = line.requirement
        try:
            # What install_req_from_line() makes of it: a name and specifier, or a link (URL, path).
            parts = parse_req_from_line(line.requirement, None)
            entry["name"] = parts.requirement.name if parts.requirement else None
            entry["specifier"] = str(parts.requirement.specifier) if parts.requirement else None
            entry["url"] = parts.link.url if parts.link else None
        except Exception as error:  # pip would refuse the line
            entry["unparsed"] = str(error)
        marker = line.requirement.split(";", 1)[1].strip() if ";" in line.requirement else ""
        entry["marker"] = marker or None
    return entry


def read_file(name):
    parser = RequirementsFileParser(PipSession(), get_line_parser(None))
    try:
        return {"lines": [read_line(line) for line in parser.parse(name, False)]}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


print(json.dumps({name: read_file(name) for name in sys.argv[1:]}))
