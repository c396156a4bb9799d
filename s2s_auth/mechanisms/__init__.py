"""One module per authentication mechanism; ``s2s_auth.authentication`` re-exports them."""
