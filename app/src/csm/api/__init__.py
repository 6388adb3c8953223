"""HTTP routers, error handlers and middleware."""
