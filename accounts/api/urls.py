from django.urls import path

from accounts.api import views

urlpatterns = [
    path("tokens", views.TokensView.as_view()),
    path("tokens/<int:token_id>", views.TokenDetailView.as_view()),
]
