"""gunicorn: a pre-fork HTTP server for WSGI and ASGI applications."""

version_info: tuple[int, int, int] = (27, 1, 0)
__version__: str = ".".join(str(v) for v in version_info)
SERVER: str = "gunicorn"
SERVER_SOFTWARE: str = f"{SERVER}/{__version__}"
