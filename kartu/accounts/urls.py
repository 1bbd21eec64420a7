"""The member's own pages under /akun/ (allauth's views are mounted there too)."""

from django.urls import path

from kartu.accounts import views
from kartu.accounts.altcha import challenge_view

app_name = "accounts"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("altcha/", challenge_view, name="altcha_challenge"),
    path("hubungkan/", views.link, name="link"),
    path("hubungkan/kode/", views.link_code, name="link_code"),
    path("hubungkan/kirim-ulang/", views.link_resend, name="link_resend"),
    path("kartu/", views.card, name="card"),
    path("kartu/nik/", views.reveal_nik, name="reveal_nik"),
    path("kartu/<int:pk>/kartu.png", views.card_png, name="card_png"),
    path("kartu/<int:pk>/kartu.pdf", views.card_pdf, name="card_pdf"),
    path("kartu/<int:pk>/ganti/", views.card_replace, name="card_replace"),
    path("sesi/", views.sessions, name="sessions"),
    path("sesi/<int:pk>/akhiri/", views.end_session, name="end_session"),
]
