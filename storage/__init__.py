"""MongoDB storage through PyMongo's async API. Start at `storage.database.Database`."""
