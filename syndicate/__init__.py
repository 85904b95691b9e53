"""syndicate: republish authors' posts in partner magazines, correctly and with their permission.

The pipeline runs in this order for every source, entry and partner (see ``pipeline.STAGES``):
fetch → parse → decide → rewrite → render → push → record.
"""

__version__ = "0.1.0"
