"""Process plumbing for the ``erumlab`` command: lock, ports, embedded Redis, supervision.

Kept free of Django so the command can refuse a second start or a taken port
before anything heavy is imported.
"""
