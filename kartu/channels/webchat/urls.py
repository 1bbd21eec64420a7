from django.urls import path

from kartu.channels.webchat import views

app_name = "webchat"
urlpatterns = [
    path("", views.chat, name="chat"),
    path("pesan", views.poll, name="poll"),
]
