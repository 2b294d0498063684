"""Server Mechanics: process setup, proxies and HTTP parsing policy."""

from __future__ import annotations

import os

from gunicorn import util
from gunicorn.config.core import Setting, flag_setting
from gunicorn.config.validators import (
    parse_octal,
    validate_bool,
    validate_chdir,
    validate_dict,
    validate_group,
    validate_header_map_behaviour,
    validate_list_string,
    validate_octal,
    validate_protocol,
    validate_proxy_protocol,
    validate_raw_env,
    validate_string,
    validate_string_to_addr_list,
    validate_string_to_list,
    validate_user,
)

SECTION = "Server Mechanics"


def default_forwarded_allow_ips() -> str:
    """``$FORWARDED_ALLOW_IPS`` when set, else the loopback addresses."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def _flag(name: str, cli: tuple[str, ...], short: str, desc: str) -> Setting:
    return flag_setting(SECTION, name, cli, short, desc)


def _string(name: str, cli: tuple[str, ...], meta: str, short: str, desc: str) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        cli=cli,
        meta=meta,
        validator=validate_string,
        default=None,
        short=short,
        desc=desc,
    )


SETTINGS = [
    _flag(
        "preload_app",
        ("--preload",),
        "Import the application in the master before forking workers.",
        """
Imports the application once in the master; workers then share its memory pages
copy-on-write, which saves RAM and start-up time and shows import errors before any worker
starts. The price: code is not reloaded on HUP (restart the master, or use USR2), and
anything created at import time (connections, threads) is shared by every worker.
""",
    ),
    Setting(
        name="sendfile",
        section=SECTION,
        cli=("--no-sendfile",),
        action="store_const",
        const=False,
        validator=validate_bool,
        default=None,
        short="Do not use sendfile() for file responses.",
        desc="""
Responses built with `wsgi.file_wrapper` are sent with the `sendfile()` system call when
possible. `--no-sendfile` turns that off (some virtualised or network file systems serve
stale data through it). When the setting is left unset, the `SENDFILE` environment variable
decides: `y`, `1`, `yes` or `true` enable it, anything else disables it.
""",
    ),
    _flag(
        "reuse_port",
        ("--reuse-port",),
        "Let every worker bind its own sockets with SO_REUSEPORT.",
        """
Each worker binds its own listening sockets with `SO_REUSEPORT`, so the kernel spreads new
connections across workers. Falls back to the master's sockets where the option is not
supported.
""",
    ),
    Setting(
        name="chdir",
        section=SECTION,
        cli=("--chdir",),
        validator=validate_chdir,
        default_factory=util.getcwd,
        default_doc="'.'",
        short="Directory to change to before loading the application.",
        desc="""
Directory to change to before the application is loaded; it is also put first on
`sys.path`. It must exist. Defaults to the directory gunicorn was started from.
""",
    ),
    _flag(
        "daemon",
        ("-D", "--daemon"),
        "Detach from the terminal and run in the background.",
        """
Detaches from the terminal and runs in the background. Not needed (and best avoided) under a
process supervisor such as systemd, Docker or Kubernetes.
""",
    ),
    Setting(
        name="raw_env",
        section=SECTION,
        cli=("-e", "--env"),
        action="append",
        meta="ENV",
        validator=validate_raw_env,
        default=[],
        short="Set an environment variable, KEY=VALUE; repeat for more.",
        desc="""
`KEY=VALUE` pairs put into the environment of the master and the workers, e.g.
`-e DJANGO_SETTINGS_MODULE=mysite.settings`. Repeat the option for several variables. In a
config file: `raw_env = ["KEY=VALUE"]`.
""",
    ),
    _string(
        "pidfile",
        ("-p", "--pid"),
        "FILE",
        "File the master writes its process id to.",
        """
The master writes its process id to this file and removes it on exit. No file is written
when unset.
""",
    ),
    _string(
        "worker_tmp_dir",
        ("--worker-tmp-dir",),
        "DIR",
        "Directory for the workers' heartbeat files (e.g. /dev/shm).",
        """
Workers signal that they are alive by touching a temporary file in this directory. When the
system temporary directory is on a slow or disk-backed file system (common in containers),
point this at a memory file system such as `/dev/shm` to avoid false worker timeouts.
""",
    ),
    Setting(
        name="user",
        section=SECTION,
        cli=("-u", "--user"),
        meta="USER",
        validator=validate_user,
        default_factory=os.geteuid,
        default_doc="os.geteuid()",
        short="User (name or uid) the workers run as.",
        desc="""
A user name or numeric uid. Workers switch to it after they are forked; the master keeps its
own identity. Changing user requires starting as root.
""",
    ),
    Setting(
        name="group",
        section=SECTION,
        cli=("-g", "--group"),
        meta="GROUP",
        validator=validate_group,
        default_factory=os.getegid,
        default_doc="os.getegid()",
        short="Group (name or gid) the workers run as.",
        desc="""
A group name or numeric gid. Workers switch to it after they are forked.
""",
    ),
    Setting(
        name="umask",
        section=SECTION,
        cli=("-m", "--umask"),
        meta="INT",
        validator=validate_octal,
        type=parse_octal,
        default=0,
        short="The umask for files gunicorn creates (a leading 0 means octal).",
        desc="""
The umask gunicorn runs with; it affects files it creates such as Unix sockets and the PID
file. Accepts decimal, `0o22` / `0x12` style literals, or a string with a leading zero
(`0022`) read as octal.
""",
    ),
    _flag(
        "initgroups",
        ("--initgroups",),
        "Give workers every supplementary group of their user.",
        """
When switching to `user`, also give the workers every supplementary group that user belongs
to, as a login would.
""",
    ),
    Setting(
        name="tmp_upload_dir",
        section=SECTION,
        meta="DIR",
        validator=validate_string,
        default=None,
        short="Unused; kept so that old configurations still load.",
        desc="""
Kept for compatibility; request bodies are not spooled to disk, so the value is not used and
the setting may be removed in a future version.
""",
    ),
    Setting(
        name="secure_scheme_headers",
        section=SECTION,
        validator=validate_dict,
        default={
            "X-FORWARDED-PROTOCOL": "ssl",
            "X-FORWARDED-PROTO": "https",
            "X-FORWARDED-SSL": "on",
        },
        short="Headers (and values) by which a trusted proxy marks HTTPS requests.",
        desc="""
Maps upper-case header names to the value that means "this request arrived over HTTPS". A
request from a peer in `forwarded_allow_ips` that carries one of them gets
`wsgi.url_scheme = "https"`. Headers that disagree with each other make the request fail
with 400. Config file only, e.g.
`secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}`.
""",
    ),
    Setting(
        name="forwarded_allow_ips",
        section=SECTION,
        cli=("--forwarded-allow-ips",),
        meta="STRING",
        validator=validate_string_to_addr_list,
        default_factory=default_forwarded_allow_ips,
        default_doc="'127.0.0.1,::1'",
        short="Proxies (addresses, networks or *) trusted with forwarding headers.",
        desc="""
Comma separated addresses and networks (CIDR, e.g. `10.0.0.0/8`) of the proxies trusted to
set `secure_scheme_headers` and `forwarder_headers`, and to open h2c connections. `*`
trusts everyone, which is only safe when nothing else can reach gunicorn. Connections over a
Unix socket are always trusted. Networks must not have host bits set. The value is kept as a
list of strings.

The `FORWARDED_ALLOW_IPS` environment variable, when set, is the default.
""",
    ),
    _string(
        "pythonpath",
        ("--pythonpath",),
        "STRING",
        "Comma separated directories put first on sys.path.",
        """
Directories put at the front of `sys.path` before the application is imported, e.g.
`/home/djangoprojects/myproject,/home/python/mylibrary`.
""",
    ),
    _string(
        "paste",
        ("--paste", "--paster"),
        "STRING",
        "PasteDeploy ini file (FILE#SECTION) to load the application from.",
        """
Loads the application from a PasteDeploy ini file, optionally naming a section:
`production.ini#main`. Settings in the file's `[server:main]` section are applied too.
""",
    ),
    Setting(
        name="proxy_protocol",
        section=SECTION,
        cli=("--proxy-protocol",),
        meta="MODE",
        nargs="?",
        const="auto",
        validator=validate_proxy_protocol,
        default="off",
        short="Accept PROXY protocol headers: off, v1, v2 or auto.",
        desc="""
Accepts the PROXY protocol header that load balancers such as HAProxy or AWS NLB put in
front of each connection to pass on the client's real address. `v1` accepts the text form,
`v2` the binary form, `auto` either. The bare flag `--proxy-protocol` means `auto`. Only
peers listed in `proxy_allow_ips` may send the header.
""",
    ),
    Setting(
        name="proxy_allow_ips",
        section=SECTION,
        cli=("--proxy-allow-from",),
        meta="STRING",
        validator=validate_string_to_addr_list,
        default="127.0.0.1,::1",
        short="Peers (addresses, networks or *) allowed to send a PROXY header.",
        desc="""
Comma separated addresses and networks (CIDR) allowed to send a PROXY protocol header; others
get 403. `*` allows everyone.
""",
    ),
    Setting(
        name="protocol",
        section=SECTION,
        cli=("--protocol",),
        meta="STRING",
        validator=validate_protocol,
        default="http",
        short="The protocol spoken on the listening sockets: http or uwsgi.",
        desc="""
`http` is plain HTTP. `uwsgi` is the binary uWSGI protocol that nginx speaks with
`uwsgi_pass`; only peers in `uwsgi_allow_ips` may use it.
""",
    ),
    Setting(
        name="uwsgi_allow_ips",
        section=SECTION,
        cli=("--uwsgi-allow-from",),
        meta="STRING",
        validator=validate_string_to_addr_list,
        default="127.0.0.1,::1",
        short="Peers allowed to speak the uWSGI protocol (* for all).",
        desc="""
Comma separated addresses of the peers allowed to talk uWSGI when `protocol` is `uwsgi`.
`*` allows everyone.
""",
    ),
    Setting(
        name="raw_paste_global_conf",
        section=SECTION,
        cli=("--paste-global",),
        action="append",
        meta="CONF",
        validator=validate_list_string,
        default=[],
        short="A PasteDeploy global, KEY=VALUE; repeat for more.",
        desc="""
A `key=value` variable passed to PasteDeploy as a global; repeat the option for more. Write
`\\=` for an equals sign inside the key or the value.
""",
    ),
    _flag(
        "permit_obsolete_folding",
        ("--permit-obsolete-folding",),
        "Accept header values folded over several lines (obs-fold).",
        """
Accepts header values continued on the next line (obs-fold, deprecated by RFC 9112) instead
of rejecting the request with 400. The continuation is joined with a space.
""",
    ),
    _flag(
        "strip_header_spaces",
        ("--strip-header-spaces",),
        "Accept and strip whitespace before a header's colon (unsafe).",
        """
Accepts and removes whitespace between a header name and its colon. RFC 9112 forbids it
because proxies disagree on how to read such headers, which enables request smuggling. Use
only when a broken client needs it.
""",
    ),
    _flag(
        "permit_unconventional_http_method",
        ("--permit-unconventional-http-method",),
        "Accept any token as a method, not only 3-20 upper-case letters.",
        """
By default methods must be 3 to 20 upper-case characters without `#`, which catches
garbage and desynchronised streams early. This accepts any method that is a valid token.
""",
    ),
    _flag(
        "permit_unconventional_http_version",
        ("--permit-unconventional-http-version",),
        "Accept HTTP versions other than 1.0 and 1.1.",
        """
By default only HTTP/1.0 and HTTP/1.1 are accepted on an HTTP/1 connection. This accepts
any syntactically valid `HTTP/d.d` version.
""",
    ),
    _flag(
        "casefold_http_method",
        ("--casefold-http-method",),
        "Upper-case request methods before the application sees them.",
        """
Upper-cases request methods before they reach the application, as older versions did.
Methods are case-sensitive, so leave this off unless a client depends on it.
""",
    ),
    Setting(
        name="forwarder_headers",
        section=SECTION,
        cli=("--forwarder-headers",),
        validator=validate_string_to_list,
        default="SCRIPT_NAME,PATH_INFO",
        short="Underscore headers a trusted proxy may pass into the WSGI environ.",
        desc="""
Header names containing underscores that a trusted proxy (see `forwarded_allow_ips`) may
set directly into the WSGI environment, e.g. `SCRIPT_NAME` or `REMOTE_USER`. From other
peers such headers are handled by `header_map`.
""",
    ),
    Setting(
        name="header_map",
        section=SECTION,
        cli=("--header-map",),
        validator=validate_header_map_behaviour,
        default="drop",
        short="Headers with underscores in the name: drop, refuse or dangerous.",
        desc="""
What to do with request headers whose name contains an underscore, which would otherwise
collide with the dash form in the WSGI environment (`X_USER` and `X-USER` both become
`HTTP_X_USER`): `drop` silently ignores them, `refuse` answers 400, `dangerous` maps them
like dashes. Names listed in `forwarder_headers` from trusted peers are exempt.
""",
    ),
    Setting(
        name="root_path",
        section=SECTION,
        cli=("--root-path",),
        meta="STRING",
        validator=validate_string,
        default="",
        short="The ASGI root_path: the prefix the application is mounted under.",
        desc="""
Sets `root_path` in the ASGI scope, for applications served under a URL prefix by a proxy
(e.g. `/api`).
""",
    ),
]
