"""Service views pick their JSON renderer without negotiating for the ``Accept``
headers services send, and answer exactly what DRF's negotiation would; anything
else is DRF's negotiation as before."""

from __future__ import annotations

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from s2s_auth.negotiation import JSONNegotiationMixin


class _View(JSONNegotiationMixin, APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    format_kwarg = None


def _negotiate(view_cls, accept: str | None, query: str = ""):
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get("/x" + query, **extra))
    view = view_cls()
    view.format_kwarg = None
    return view.perform_content_negotiation(request)


def _drf(accept: str | None, query: str = ""):
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get("/x" + query, **extra))
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    return DefaultContentNegotiation().select_renderer(request, renderers)


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        (None, ""),
        ("*/*", ""),
        ("application/json", ""),
        ("text/html", ""),
        ("application/json; indent=4", ""),
        ("text/html,application/xhtml+xml,*/*;q=0.8", ""),
        ("*/*", "?format=api"),
        ("*/*", "?format=json"),
        ("*/*", "?other=1"),
    ],
)
def test_the_answer_is_drfs(accept, query):
    renderer, media_type = _negotiate(_View, accept, query)
    expected, expected_type = _drf(accept, query)
    assert (type(renderer), media_type) == (type(expected), expected_type)


def test_the_shortcut_is_taken_for_plain_json_accepts(monkeypatch):
    """No DRF negotiation for the headers services send (the shortcut can fail: it
    is counted), DRF's for the others."""
    calls = []
    original = DefaultContentNegotiation.select_renderer

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DefaultContentNegotiation, "select_renderer", counted)
    for accept in (None, "*/*", "application/json"):
        assert type(_negotiate(_View, accept)[0]) is JSONRenderer
    assert calls == []
    assert type(_negotiate(_View, "text/html")[0]) is BrowsableAPIRenderer
    assert calls == [1]


def test_unacceptable_is_still_406():
    from rest_framework.exceptions import NotAcceptable

    with pytest.raises(NotAcceptable):
        _negotiate(_View, "application/xml")
    with pytest.raises(NotAcceptable):
        _negotiate(_View, "")


def test_a_view_with_its_own_negotiation_keeps_it():
    class Picky(DefaultContentNegotiation):
        def select_renderer(self, request, renderers, format_suffix=None):
            return renderers[-1], renderers[-1].media_type

    class View(_View):
        content_negotiation_class = Picky

    assert type(_negotiate(View, "*/*")[0]) is BrowsableAPIRenderer


def test_a_view_whose_first_renderer_is_not_json_negotiates():
    class View(_View):
        renderer_classes = [BrowsableAPIRenderer, JSONRenderer]

    assert type(_negotiate(View, "*/*")[0]) is BrowsableAPIRenderer
    assert type(_negotiate(View, "application/json")[0]) is JSONRenderer


@pytest.mark.django_db
def test_a_service_view_answers_json_or_the_browsable_api(client):
    """End to end (a refusal is rendered by the negotiated renderer too)."""
    for accept in ({}, {"HTTP_ACCEPT": "*/*"}, {"HTTP_ACCEPT": "application/json"}):
        response = client.get("/service/scoped", **accept)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "not_authenticated"
    response = client.get("/service/scoped", HTTP_ACCEPT="text/html")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("text/html")
