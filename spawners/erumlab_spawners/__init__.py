"""JupyterHub side of erumlab: spawners registered as entry points, config helpers.

This package imports neither Django nor the portal: the hub talks to the
portal only over HTTP (OpenID Connect for login, the portal's URLs in env).
"""
