"""AdService: ads for end users, nearby search, and the nightly batch jobs."""
