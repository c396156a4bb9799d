import hashlib
import json

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from s2s_auth.views import ServiceAPIView

from .models import Notification
from .serializers import NotificationSerializer, validate_idempotency_key


class UserNotificationsView(ServiceAPIView):
    """``POST /api/v1/users/{id}/notifications``: a service notifies a user.

    Body ``{"kind": "ad_expired", "message": "...", "ad_id": 42}``; callers are
    services with scope ``users:notify`` (batch jobs: no end user involved). The
    sender is the caller's SPIFFE ID.

    With an ``Idempotency-Key`` header the request is safe to repeat: the first one
    creates the notification (201); a repeat from the same sender with the same key
    and the same body gets that notification back (200, ``Idempotent-Replayed: true``)
    and creates nothing; the same key with a different body is 422
    ``idempotency_key_reused``. An unknown user is 404 ``unknown_user``.

    A notice about a deal (``deal_*``) is sent for the user who acted: the caller must
    forward that user's token (user context, nested in its service JWT), else 403
    ``end_user_required``; the verified user is stored as ``on_behalf_of``. A user
    cannot be the recipient of their own deal notice (403 ``recipient_is_end_user``).
    """

    required_scopes = ["users:notify"]

    @extend_schema(
        request=NotificationSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="1 to 255 visible ASCII characters; makes the request safe to repeat.",
            )
        ],
        responses={
            201: NotificationSerializer,
            200: OpenApiResponse(NotificationSerializer, "A repeat: the notification made before."),
            422: OpenApiResponse(description="idempotency_key_reused"),
        },
    )
    def post(self, request, user_id: int):
        key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
        if not get_user_model().objects.filter(pk=user_id).exists():
            raise NotFound(f"No user {user_id}.", code="unknown_user")
        serializer = NotificationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sender = request.user.spiffe_id
        on_behalf_of = end_user_for(request, serializer.validated_data["kind"], user_id)
        digest = request_digest(user_id, serializer.validated_data)
        if key is not None:
            existing = Notification.objects.filter(sender=sender, idempotency_key=key).first()
            if existing is not None:
                return self.replay(existing, digest)
        try:
            with transaction.atomic():
                notification = serializer.save(
                    user_id=user_id,
                    sender=sender,
                    on_behalf_of=on_behalf_of,
                    idempotency_key=key or "",
                    request_digest=digest,
                )
        except IntegrityError:
            if key is None:
                raise
            # A concurrent request with the same key won the race.
            existing = Notification.objects.get(sender=sender, idempotency_key=key)
            return self.replay(existing, digest)
        return Response(NotificationSerializer(notification).data, status=status.HTTP_201_CREATED)

    def replay(self, existing: Notification, digest: str) -> Response:
        if existing.request_digest != digest:
            return Response(
                {
                    "error": "idempotency_key_reused",
                    "detail": "This Idempotency-Key was already used for a different request.",
                },
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        response = Response(NotificationSerializer(existing).data, status=status.HTTP_200_OK)
        response["Idempotent-Replayed"] = "true"
        return response


def end_user_for(request, kind: str, user_id: int) -> str:
    """The verified end user the caller acts for ("" if none); required for deals."""
    end_user = getattr(request.user, "end_user", None)
    if not kind.startswith("deal_"):
        return end_user.id if end_user else ""
    if end_user is None:
        raise PermissionDenied(
            "A deal notice is sent for the user who acted: forward their token.",
            code="end_user_required",
        )
    if end_user.id == str(user_id):
        raise PermissionDenied(
            "A user is not notified of their own action.", code="recipient_is_end_user"
        )
    return end_user.id


def request_digest(user_id: int, data: dict) -> str:
    """SHA-256 of what the request asks for: the user and the notification's fields."""
    canonical = json.dumps(
        {"user_id": user_id, **{k: data.get(k) for k in ("kind", "message", "ad_id")}},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
