from rest_framework import serializers

from .models import Notification

IDEMPOTENCY_KEY_MAX = 255


class NotificationSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "user_id",
            "kind",
            "message",
            "ad_id",
            "sender",
            "on_behalf_of",
            "created",
            "read_at",
        ]
        read_only_fields = ["id", "user_id", "sender", "on_behalf_of", "created", "read_at"]


def validate_idempotency_key(value: str | None) -> str | None:
    """``Idempotency-Key``: optional; 1 to 255 visible ASCII characters when given."""
    if value is None:
        return None
    if not 0 < len(value) <= IDEMPOTENCY_KEY_MAX or not all("\x21" <= ch <= "\x7e" for ch in value):
        raise serializers.ValidationError(
            {
                "Idempotency-Key": [
                    f"1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters, without spaces."
                ]
            }
        )
    return value
