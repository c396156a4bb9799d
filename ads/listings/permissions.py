"""Who may change an ad: the seller, known from the verified end-user token alone."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .identity import end_user_id


class EndUserWrites(BasePermission):
    """Reading is open; writing needs an end user signed in at the identity service.

    A local account of ads (its admin, signed in with a session) is refused: it is not
    a person of the marketplace, and its integer id would collide with a seller's.
    """

    message = "Sign in at the identity service and present its access token (Bearer)."
    code = "end_user_required"

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or end_user_id(request) is not None


class IsSellerOrReadOnly(BasePermission):
    """Anyone may read; only the ad's seller may change or delete it."""

    message = "Only the seller of this ad may change it."
    code = "not_the_seller"

    def has_object_permission(self, request, view, obj):
        return request.method in SAFE_METHODS or end_user_id(request) == obj.seller_id


class IsEndUser(BasePermission):
    """Every method needs an end user signed in at the identity service (deals)."""

    message = EndUserWrites.message
    code = "end_user_required"

    def has_permission(self, request, view):
        return end_user_id(request) is not None
