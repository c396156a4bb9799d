"""UserService: people, seller previews, and the identity service."""
