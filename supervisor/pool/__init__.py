"""Many hosts on one PostgreSQL (issue 22; DESIGN.md section 5): only with ``store:``.

* ``store``: the SQL of one node against the shared tables (async psycopg).
* ``leases``: what this node holds, judged by its own monotonic clock since the last
  renewal the database accepted (expiry itself is the database's clock).
* ``balance``: how many users a node should hold.
* ``node``: the loop the arbiter runs as a service: connect (with backoff), refuse a
  different plan, heartbeat + renew + claim in one transaction, fence, hand over.
"""
