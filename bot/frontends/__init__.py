"""Front-ends: adapters between a chat platform (or the terminal) and the use cases."""
