from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def healthz(request: HttpRequest) -> JsonResponse:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT 1")
    return JsonResponse({"ok": True})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("desk/", include("kartu.desk.urls")),
    path("tanya-kpj/", include("kartu.channels.webchat.urls")),
    # member accounts: our pages first, then allauth's (login/, signup/, password/…, 2fa/…)
    path("akun/", include("kartu.accounts.urls")),
    path("akun/", include("allauth.urls")),
    path("", include("kartu.card.urls")),
    path("", include("kartu.web.urls")),
]
