"""The path of every accepted event: the router, the middleware chain, and the model turn."""
