"""Application loading: the ``gunicorn`` command, custom applications, PasteDeploy."""
