from django.urls import path

from s2s_auth import MetricsView

urlpatterns = [path("metrics", MetricsView.as_view())]
