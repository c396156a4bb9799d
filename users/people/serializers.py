from rest_framework import serializers

from .models import Profile

MAX_PREVIEW_IDS = 100


class PreviewSerializer(serializers.ModelSerializer):
    """The public face of a seller, as other services show it."""

    id = serializers.IntegerField(source="user_id")

    class Meta:
        model = Profile
        fields = ["id", "display_name", "city", "rating", "member_since"]


class PersonSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Profile
        fields = ["id", "username", "display_name", "city", "rating", "member_since"]


class PreviewQuerySerializer(serializers.Serializer):
    """``ids=1,2,3``: at most 100 positive integers; duplicates collapse."""

    ids = serializers.CharField()

    def validate_ids(self, value: str) -> list[int]:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts:
            raise serializers.ValidationError("Give at least one id, e.g. ids=1,2,3.")
        try:
            ids = [int(part) for part in parts]
        except ValueError:
            raise serializers.ValidationError("Every id must be an integer.") from None
        if any(i <= 0 for i in ids):
            raise serializers.ValidationError("Ids are positive integers.")
        unique = list(dict.fromkeys(ids))
        if len(unique) > MAX_PREVIEW_IDS:
            raise serializers.ValidationError(f"At most {MAX_PREVIEW_IDS} ids per request.")
        return unique
