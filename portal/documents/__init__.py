"""PDF documents rendered with reportlab: request quotes and confirmations (invoices, credit
notes and SLA claims to follow). Every document embeds its font (fonts.py) and renders from
plain values, never from ORM objects, so the same input gives the same bytes."""
