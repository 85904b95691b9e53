"""``python -m syndicate.parseworker``: one isolated feed-parsing process (see ``feeds.ParserPool``).

A module of its own so that what the worker sends back pickles as ``syndicate.feeds.*``, not ``__main__.*``.
"""

from .feeds import worker_main

worker_main()
