"""Fault-containment tests: plugins that really crash, hang, allocate and attack."""
