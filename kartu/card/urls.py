from django.urls import path

from kartu.card import views

app_name = "card"
urlpatterns = [
    path(".well-known/kartu/keys.json", views.keys_json, name="keys"),
    path(".well-known/kartu/revoked.json", views.revoked_json, name="revoked"),
    path("verifikasi", views.verify_page, name="verify"),
    path("verifikasi-sw.js", views.service_worker, name="verify-sw"),
]
