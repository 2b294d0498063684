"""Process-level errors: they stop the server or refuse a configuration."""


class HaltServer(BaseException):
    """Raised inside the arbiter to stop it with an exit status and a reason."""

    def __init__(self, reason: str, exit_status: int = 1) -> None:
        super().__init__(reason, exit_status)
        self.reason = reason
        self.exit_status = exit_status

    def __str__(self) -> str:
        return f"<HaltServer {self.reason!r} {self.exit_status}>"


class ConfigError(Exception):
    """A setting or a combination of settings is invalid."""

    #: The exit status of ``gunicorn`` when this error stops it.
    exit_status = 1


class MissingWorkerPackage(ConfigError):
    """The worker class needs a package that is not installed (exit 3, as a worker that
    cannot boot)."""

    exit_status = 3


class AppImportError(Exception):
    """The application named on the command line could not be loaded."""


class WorkerExit(SystemExit):
    """Raised by a worker's signal handlers to leave at once (QUIT, INT, ABRT). Code
    that turns an application's own ``sys.exit`` into an error lets this one through."""


class RequestTimeout(WorkerExit):
    """Raised in the thread of a request that outlived ``timeout`` (the arbiter's SIGABRT
    for the sync worker, the worker's own watch for gthread threads). The request cycle
    answers the client with 500 if no byte of the response was sent, logs where the
    application was stuck, and lets it through."""
