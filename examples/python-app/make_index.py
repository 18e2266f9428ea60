#!/usr/bin/env python3
"""Lay out a PEP 503 "simple" index of the wheels and sdists in a directory, offline.

    python3 make_index.py FILES_DIR INDEX_DIR

Writes INDEX_DIR/simple/index.html and, per project, INDEX_DIR/simple/<name>/index.html linking
each file with its #sha256= fragment (vendor-sync takes only files whose hash the index states),
the file itself beside the page. Any static web server over INDEX_DIR is then an index:
`python3 -m http.server --directory INDEX_DIR` serves it at http://127.0.0.1:8000/simple/.
"""
import hashlib
import html
import os
import re
import shutil
import sys


def project_of(filename):
    """The PEP 503 normalized project name of a wheel or sdist file name."""
    stem = filename[: -len(".whl")] if filename.endswith(".whl") else filename.rsplit("-", 1)[0]
    return re.sub(r"[-_.]+", "-", stem.split("-")[0]).lower()


def page(title, links):
    body = "\n".join(f'    <a href="{html.escape(href)}">{html.escape(text)}</a><br />' for href, text in links)
    return f"<!DOCTYPE html>\n<html>\n  <head><title>{title}</title></head>\n  <body>\n{body}\n  </body>\n</html>\n"


def main(files_dir, index_dir):
    projects = {}
    for filename in sorted(os.listdir(files_dir)):
        if filename.endswith((".whl", ".tar.gz", ".zip")):
            projects.setdefault(project_of(filename), []).append(filename)
    simple = os.path.join(index_dir, "simple")
    for project, filenames in projects.items():
        target = os.path.join(simple, project)
        os.makedirs(target, exist_ok=True)
        links = []
        for filename in filenames:
            shutil.copyfile(os.path.join(files_dir, filename), os.path.join(target, filename))
            with open(os.path.join(target, filename), "rb") as fh:
                links.append((f"{filename}#sha256={hashlib.sha256(fh.read()).hexdigest()}", filename))
        with open(os.path.join(target, "index.html"), "w") as fh:
            fh.write(page(f"Links for {project}", links))
    os.makedirs(simple, exist_ok=True)
    with open(os.path.join(simple, "index.html"), "w") as fh:
        fh.write(page("Simple index", [(f"{p}/", p) for p in sorted(projects)]))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
