"""``python -m gunicorn`` runs the same command line as the ``gunicorn`` script."""

from gunicorn.app.wsgiapp import run

if __name__ == "__main__":
    run(prog="gunicorn")
