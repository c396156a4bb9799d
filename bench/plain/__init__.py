"""The "trust the network" configuration of users for the ``nearby_plain`` case.

In the benchmark's ``plain`` servers ads calls users over plain HTTP with no
credential. With users' own URLconf the previews endpoint refuses that call (401, with
its refusal audit record), so ads would answer without seller previews and the
comparison with ``nearby_s2s`` would be unfair. Here, and only here, users serves
``/api/v1/users/previews`` without authentication (``PlainPreviewsView``): both hops
of ``nearby_plain`` really skip auth. Never used outside ``python -m fleamarket bench``.
"""
