"""The audit log's domain: records, their leaves, the rules, and the storage port. No I/O."""
