from s2s_auth.client.auth import end_user_context


def previews_on_behalf(users, user_token):
    """``users``: a ServiceClient with ServiceJWTAuth; ``user_token``: the end user's
    access token, e.g. ``request.auth.token`` in a view behind EndUserTokenAuthentication."""
    with end_user_context(user_token):  # sent beside each JWT minted in the block
        return users.get("api/v1/users/on-behalf")
