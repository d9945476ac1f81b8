"""Major Tom: answers grounded in the same query functions the API serves, every number with a reference."""
