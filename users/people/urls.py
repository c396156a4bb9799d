from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import PersonViewSet, PreviewsView

router = DefaultRouter()
router.register("users", PersonViewSet, basename="person")

urlpatterns = [
    path("users/previews", PreviewsView.as_view(), name="user-previews"),
    *router.urls,
]
