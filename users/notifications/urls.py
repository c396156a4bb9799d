from django.urls import path

from .views import UserNotificationsView

urlpatterns = [
    path(
        "users/<int:user_id>/notifications",
        UserNotificationsView.as_view(),
        name="user-notifications",
    ),
]
