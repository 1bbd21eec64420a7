"""The agent inbox under /desk/ (included from kartu/urls.py)."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from kartu.accounts.signin_limits import StaffLoginForm
from kartu.desk import views

app_name = "desk"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("login/", auth_views.LoginView.as_view(
        template_name="registration/login.html", redirect_authenticated_user=True,
        authentication_form=StaffLoginForm,  # attempts limited per IP and per username
        next_page=reverse_lazy("desk:inbox"),
    ), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page=reverse_lazy("desk:login")),
         name="logout"),
    path("c/<int:pk>/", views.conversation_detail, name="conversation"),
    path("c/<int:pk>/reply/", views.reply, name="reply"),
    path("c/<int:pk>/assign/", views.assign, name="assign"),
    path("c/<int:pk>/status/", views.set_status, name="status"),
    path("c/<int:pk>/flag/", views.set_flag, name="flag"),
    path("c/<int:pk>/verify/", views.verify, name="verify"),
    path("outbox/<int:pk>/retry/", views.retry, name="retry"),
    path("nik-lock/", views.nik_lock, name="nik_lock"),
    path("branch/", views.branch_links, name="branch_links"),
    path("branch/<int:pk>/confirm/", views.branch_confirm, name="branch_confirm"),
    path("branch/<int:pk>/reject/", views.branch_reject, name="branch_reject"),
]
