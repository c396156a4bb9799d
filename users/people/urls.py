from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import PersonViewSet, PingView, PreviewsView, ServicePingView

router = DefaultRouter()
router.register("users", PersonViewSet, basename="person")

urlpatterns = [
    path("users/previews", PreviewsView.as_view(), name="user-previews"),
    path("ping", PingView.as_view(), name="ping"),
    path("service-ping", ServicePingView.as_view(), name="service-ping"),
    *router.urls,
]
