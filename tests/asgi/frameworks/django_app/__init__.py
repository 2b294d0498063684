"""The route contract of ``common.py`` as a Django (ASGI) project: settings, urls, asgi."""
