"""Configuration files written for gunicorn 27, run by a real server: ``python:MODULE``
config modules, a misspelt setting, and hooks reading ``req``/``resp`` through gunicorn's
import paths."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import Gunicorn, request

APP = textwrap.dedent(
    """
    import json
    import gunicorn.http.body
    import gunicorn.http.wsgi

    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        seen = {
            "input_is_body": isinstance(environ["wsgi.input"], gunicorn.http.body.Body),
            "file_wrapper": environ["wsgi.file_wrapper"] is gunicorn.http.wsgi.FileWrapper,
            "body": body.decode(),
        }
        data = json.dumps(seen).encode()
        start_response("201 Created", [("Content-Type", "application/json"),
                                       ("Content-Length", str(len(data)))])
        return [data]
    """
)

# A config file doing what deployments do with gunicorn's hooks (log fields of req and resp).
HOOKS = textwrap.dedent(
    """
    import json
    import gunicorn.http
    import gunicorn.http.message
    import gunicorn.http.wsgi

    def pre_request(worker, req):
        worker.log.info("PRE %s", json.dumps({
            "is_request": isinstance(req, gunicorn.http.message.Request),
            "is_http_request": isinstance(req, gunicorn.http.Request),
            "method": req.method, "uri": req.uri, "path": req.path, "query": req.query,
            "version": list(req.version), "remote_addr": req.remote_addr[0],
            "user_agent": dict(req.headers).get("USER-AGENT"),
        }))

    def post_request(worker, req, environ, resp):
        worker.log.info("POST %s", json.dumps({
            "is_response": isinstance(resp, gunicorn.http.wsgi.Response),
            "status": resp.status, "status_code": resp.status_code,
            "content_type": dict(resp.headers).get("Content-Type"),
            "sent": resp.sent,
        }))
    """
)


def _logged(server: Gunicorn, tag: str) -> dict[str, Any]:
    line = server.wait_for(rf"{tag} \{{.*\}}\n")
    found = re.findall(rf"{tag} (\{{.*\}})\n", line)
    return dict(json.loads(found[-1]))


def test_hooks_see_gunicorns_request_and_response_types(
    gunicorn: Callable[..., Gunicorn], tmp_path: Path
) -> None:
    (tmp_path / "hooked_app.py").write_text(APP)
    (tmp_path / "hooks.conf.py").write_text(HOOKS)
    server = gunicorn("-c", "hooks.conf.py", "hooked_app:app")
    assert server.address is not None
    status, body = request(
        server.address, "/items/?page=2", method="POST", headers=[("User-Agent", "probe/1")]
    )
    assert status == 201
    seen = json.loads(body)
    assert seen == {"input_is_body": True, "file_wrapper": True, "body": ""}
    assert _logged(server, "PRE") == {
        "is_request": True,
        "is_http_request": True,
        "method": "POST",
        "uri": "/items/?page=2",
        "path": "/items/",
        "query": "page=2",
        "version": [1, 1],
        "remote_addr": "127.0.0.1",
        "user_agent": "probe/1",
    }
    assert _logged(server, "POST") == {
        "is_response": True,
        "status": "201 Created",
        "status_code": 201,
        "content_type": "application/json",
        "sent": len(body),
    }


def test_post_request_reads_the_response_length(
    gunicorn: Callable[..., Gunicorn], tmp_path: Path
) -> None:
    (tmp_path / "hooked_app.py").write_text(APP)
    (tmp_path / "length.conf.py").write_text(
        "def post_request(worker, req, environ, resp):\n"
        "    worker.log.info('LENGTH {\"n\": %s}', resp.response_length)\n"
    )
    server = gunicorn("-c", "length.conf.py", "hooked_app:app")
    assert server.address is not None
    status, body = request(server.address, "/")
    assert status == 201
    assert _logged(server, "LENGTH") == {"n": len(body)}


@pytest.mark.parametrize("chdir", [False, True])
def test_python_config_module_next_to_the_app(
    gunicorn: Callable[..., Gunicorn], tmp_path: Path, chdir: bool
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "deploy_conf.py").write_text("workers = 2\nproc_name = 'from-module'\n")
    (project / "hooked_app.py").write_text(APP)
    if chdir:  # started elsewhere, pointed at the project with --chdir
        args = ("--chdir", str(project), "-c", "python:deploy_conf", "hooked_app:app")
        server = gunicorn(*args)
    else:
        server = gunicorn("-c", "python:deploy_conf", "hooked_app:app", cwd=str(project))
    server.wait_workers(2)
    assert server.address is not None
    assert request(server.address, "/")[0] == 201


def test_a_misspelt_setting_is_ignored_with_one_warning(
    gunicorn: Callable[..., Gunicorn], tmp_path: Path
) -> None:
    (tmp_path / "hooked_app.py").write_text(APP)
    (tmp_path / "typo.conf.py").write_text(
        "import multiprocessing\n"
        "wokers = 2\n"
        "timeout_str = '30'\n"
        "MAX_WORKERS = 4\n"
        "def _helper():\n    return 1\n"
    )
    server = gunicorn("-c", "typo.conf.py", "hooked_app:app")
    server.wait_workers(1)
    warnings = re.findall(r"\[WARNING\] (.*)\n", server.log)
    assert warnings == [
        "Unknown setting 'wokers' in the config file is ignored; did you mean 'workers'?"
    ]
