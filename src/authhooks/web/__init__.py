"""The identity server's public HTTP surface: the token endpoint, JWKS and discovery
(oauth.py), /dbconnections (dbconnections.py) and the health probes (health.py).

Plain Starlette routes, served ahead of FastAPI (app.FastPath). Each module
turns requests into calls of the domain (identity/, users/), with what hooks
may know of the request (request_info.py), and answers every failure in its
own wire shape, rendered in one place.
"""
