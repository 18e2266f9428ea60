#!/usr/bin/env python3
"""Add a wheel with a console script to a vendor tree built by examples/python-app/build_vendor.py.

    python3 cli-wheel.py VENDOR_DIR REQUIREMENTS VARIANT_OUT

Writes greet_cli-1.0-py3-none-any.whl (console script `greet-cli`: prints sys.prefix, then a
greeting through hello_mod) to VENDOR_DIR/pypi/ and lists it in the manifest. A second build of
the same wheel with other bytes (a zip comment) goes to VARIANT_OUT; the requirement appended to
REQUIREMENTS allows both hashes, so the vendored file can be swapped without touching the app.
Prints the variant's manifest integrity and size as JSON.
"""
import base64
import hashlib
import io
import json
import os
import sys
import zipfile

MODULE = b'''import sys

import hello_mod


def main():
    print(sys.prefix)
    print(hello_mod.greet("cli"))
'''


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def wheel_bytes(comment):
    dist_info = "greet_cli-1.0.dist-info"
    files = {
        "greet_cli/__init__.py": MODULE,
        f"{dist_info}/METADATA": b"Metadata-Version: 2.1\nName: greet-cli\nVersion: 1.0\nRequires-Dist: hello-mod==1.0\n",
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: repodeploy-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": b"[console_scripts]\ngreet-cli = greet_cli:main\n",
    }
    record = [f"{p},{record_hash(d)},{len(d)}" for p, d in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in files.items():
            info = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, d, zipfile.ZIP_DEFLATED)
        zf.comment = comment
    return out.getvalue()


def integrity(data):
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def main(vendor_dir, requirements, variant_out):
    name = "greet_cli-1.0-py3-none-any.whl"
    first, variant = wheel_bytes(b""), wheel_bytes(b"rebuilt")
    with open(os.path.join(vendor_dir, "pypi", name), "wb") as fh:
        fh.write(first)
    with open(variant_out, "wb") as fh:
        fh.write(variant)
    manifest_path = os.path.join(vendor_dir, "vendor-manifest.json")
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    manifest["artifacts"].append(
        {
            "ecosystem": "pypi",
            "name": "greet-cli",
            "version": "1.0",
            "path": f"pypi/{name}",
            "integrity": integrity(first),
            "source": "file:test/helpers/cli-wheel.py",
            "size": len(first),
        }
    )
    with open(manifest_path, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    hashes = " ".join(f"--hash=sha256:{hashlib.sha256(d).hexdigest()}" for d in (first, variant))
    with open(requirements, "a") as fh:
        fh.write(f"greet-cli==1.0 {hashes}\n")
    print(json.dumps({"integrity": integrity(variant), "size": len(variant)}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
