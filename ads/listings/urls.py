from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AdViewSet, DealViewSet, NearbyView, PingView

router = DefaultRouter()
router.register("ads", AdViewSet, basename="ad")
router.register("deals", DealViewSet, basename="deal")

urlpatterns = [
    path("ads/nearby", NearbyView.as_view(), name="ads-nearby"),
    path("ping", PingView.as_view(), name="ping"),
    *router.urls,
]
