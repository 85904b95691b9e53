"""Partner kinds. Each module defines ``Config`` (its config model) and ``Publisher``; the registry is
``config.PARTNER_KINDS``."""

from __future__ import annotations

from ..config import PartnerConfig, partner_module
from .base import PublishContext, Publisher


def publisher_class(kind: str) -> type[Publisher]:
    """The publisher class of a partner kind."""
    cls: type[Publisher] = partner_module(kind).Publisher
    return cls


def make_publisher(partner: PartnerConfig, context: PublishContext) -> Publisher:
    """The publisher for a partner, by its kind."""
    publisher: Publisher = partner_module(partner.kind).Publisher(partner, context)
    return publisher
