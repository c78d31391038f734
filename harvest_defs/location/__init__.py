"""The shipped code location as component instances, one folder per instance (``dg list defs``).

``chain/`` is the summarize → embed → index chain over the corpus (today's asset keys and sensors);
``ticket_triage/`` and ``translations/`` are the seed guide's use cases on small bundled sample data.
"""
