"""The JSON API under /api/v1: per-user bearer tokens, never the browser's cookie session.

`views.py` the endpoints, `auth.py` the token and the language of the answer, `errors.py`
the one error shape, `bodies.py` reading request bodies, `serialize.py` the JSON of contracts,
quotes, requests and usage (agencies never get an amount, R-71), `scope.py` what a token's
user may load, `openapi.py` the OpenAPI 3.1 document served at /api/v1/openapi.json.
"""
