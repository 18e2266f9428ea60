"""The sample Python WSGI app: configured by an .ini file, as the seed's Sync server was.

Run it with any WSGI server, e.g. `venv/bin/python -m wsgiref.simple_server` wrappers, or
`venv/bin/python app.py` for the standard library's reference server.
"""
import configparser
import json
import os

import hello_mod

HERE = os.path.dirname(os.path.abspath(__file__))


def load_config(path=None):
    """Read the .ini file: SAMPLE_INI, else app.ini beside this file (a shared file on a node)."""
    parser = configparser.ConfigParser()
    parser.read(path or os.environ.get("SAMPLE_INI", os.path.join(HERE, "app.ini")))
    return parser


def application(environ, start_response):
    config = load_config()
    body = json.dumps(
        {
            "greeting": hello_mod.greet(config.get("app", "name", fallback="world")),
            "backoff": config.getint("app", "backoff_seconds", fallback=0),
            "path": environ.get("PATH_INFO", "/"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    port = int(os.environ.get("PORT", "8081"))
    with make_server("127.0.0.1", port, application) as server:
        print(f"sample python app on 127.0.0.1:{port}")
        server.serve_forever()
