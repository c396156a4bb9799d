# ruff: noqa: F821 - path and urlpatterns come from the urls.py that startproject wrote
from users.views import PreviewsView

urlpatterns += [path("api/v1/users/previews", PreviewsView.as_view())]
