"""Use cases: take an actor, apply the rules of portal.domain, change models, flush.

Services never commit; the view (or CLI command) that called them commits once.
"""
