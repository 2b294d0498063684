"""A one-file Django application: ``gunicorn examples.django_app:application``.

Needs ``pip install django``. Settings are configured in code so no project is needed.
"""

from __future__ import annotations

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only-not-secret",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
    django.setup()


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello from Django!\n", content_type="text/plain")


def info(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"path": request.path, "scheme": request.scheme, "host": request.get_host()}
    )


urlpatterns = [path("", index), path("info", info)]

application = WSGIHandler()
