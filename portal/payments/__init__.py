"""Paying invoices (R-43): Stripe card payments, its webhook, and staff-recorded payments.

`gateway` is the one module that talks to Stripe; `service` records payments exactly once;
`webhooks` turns Stripe's signed events into payments.
"""
