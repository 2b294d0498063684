"""The control socket served by the master, its protocol, and the ``gunicornc`` client."""
