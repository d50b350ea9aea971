"""Enrichment: the inventory, AWS ip-ranges, port names, and the names they put on flows.

Modules: :mod:`~flowtools.enrichment.inventory` (the AWS inventory as tables),
:mod:`~flowtools.enrichment.naming` (what an interface belongs to),
:mod:`~flowtools.enrichment.ip_ranges` (AWS's published ranges),
:mod:`~flowtools.enrichment.ports` (service ports), :mod:`~flowtools.enrichment.collect`
(collecting the inventory from AWS), :mod:`~flowtools.enrichment.security_groups` (what
the security groups admit) and :mod:`~flowtools.enrichment.joins`, whose
:func:`~flowtools.enrichment.joins.enrich` is ``flowtools.enrich``. Side tables (small
Python-built tables joined back to the flows) are made by :mod:`flowtools.frames`.
"""
