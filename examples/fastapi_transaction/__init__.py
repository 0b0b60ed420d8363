"""A web request that writes a row and starts a flow in one database transaction."""
